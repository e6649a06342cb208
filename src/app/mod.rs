//! The use cases: everything between a parsed request and the aggregates. One module per use
//! case, each holding only what it uses; every command goes through `command::Commands`.

pub mod accounts;
pub mod admin;
pub mod answer_time;
pub mod api_tokens;
pub mod archival;
pub mod audit;
pub mod authentication;
pub mod background;
pub mod command;
pub mod context;
pub mod credentials;
pub mod directory;
pub mod error;
pub mod history;
pub mod identity_providers;
pub mod introspection;
pub mod mail_outbox;
pub mod mfa;
pub mod passkeys;
pub mod personal;
pub mod pin;
pub mod policy_sweep;
pub mod problem;
pub mod sessions;
pub mod sso;
pub mod stream;
pub mod wiring;
pub mod workspaces;

pub use context::{Authenticated, Credential, RequestContext};
pub use error::AppError;
pub use personal::Personal;
pub use problem::ProblemCode;
pub use wiring::{App, Deps};
