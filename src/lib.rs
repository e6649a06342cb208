//! The Warden server: HTTP (actix-web), wiring, adapters (hashing, sealing, mail, clock) and the
//! command line. It drives the domain in `warden-aggregates` and reads the views of
//! `warden-projections`; neither of those depends on anything here.

pub mod accounts;
pub mod adapters;
pub mod admin;
pub mod api_tokens;
pub mod audit;
pub mod cli;
pub mod error;
pub mod events;
pub mod extractors;
pub mod history;
pub mod introspection;
pub mod keys;
pub mod metrics;
pub mod mfa;
pub mod nats;
pub mod openapi;
pub mod pin;
pub mod rate_limit;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod workspaces;
