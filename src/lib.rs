//! The Warden server: the use cases (`app`), HTTP (`http`), the adapters to PostgreSQL, mail,
//! hashing, sealing and NATS (`adapters`), wiring and the command line. It drives the domain in
//! `warden-aggregates` and reads the views of `warden-projections`; neither of those depends on
//! anything here.

pub mod adapters;
pub mod app;
pub mod cli;
pub mod http;
pub mod metrics;
pub mod progress;
pub mod settings;
pub mod startup;
pub mod telemetry;
