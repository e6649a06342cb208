//! Warden's integration tests: the real server against a real PostgreSQL, a fresh database each.

mod accounts;
mod audit;
mod browsers;
mod chain;
mod chromium;
mod client;
mod events;
mod faults;
mod helpers;
mod introspection;
mod legacy_log;
mod mail;
mod master_key;
mod mfa;
mod nats;
mod notices;
mod openapi;
mod ordering;
mod pages;
mod passkeys;
mod pin;
#[allow(dead_code)]
#[path = "../support/processes.rs"]
mod processes;
#[allow(dead_code)]
#[path = "../support/proxy.rs"]
mod proxy;
mod revocation;
#[path = "../support/revocations.rs"]
mod revocations;
mod secrets;
mod sessions;
mod sso;
mod store;
mod tokens;
mod workspaces;
