//! Warden's domain: the aggregates that decide what happens to an account, the commands they
//! accept, the events they record and the errors they refuse with.
//!
//! This crate is pure. It depends on no database, no HTTP framework and no clock or random
//! source of its own: time, password verification and anything else with an effect reaches an
//! aggregate through its `Services`, so every rule can be tested with fakes.

pub mod account;
pub mod identity_provider;
pub mod shared;
pub mod workspace;
