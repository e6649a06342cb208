//! Warden's read side: the projector runtime that tails the event log in commit order, and one
//! module per view built from it.
//!
//! Depends on the domain crate for event shapes and on PostgreSQL; never on HTTP. Views make no
//! decisions: they record what the log says so that the server can answer quickly.

pub mod access_requests;
pub mod archival_schedule;
pub mod audit_chain;
pub mod audit_log;
mod checkpoint;
pub mod credentials;
mod projector;
pub mod replay;
mod runner;
pub mod session_history;
pub mod workspaces;

pub use checkpoint::Cursor;
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use projector::{ProjectionError, Projector, StoredEvent};
pub use runner::{catch_up, catch_up_once, events_after, Batch, Projections, ProjectorStatus};

use std::sync::Arc;

/// Signed audit checkpoints are written every this many events (and by a ticker in between).
pub const CHECKPOINT_EVERY: i64 = 1000;

/// Every projector Warden runs, in the order their views are usually read. `signer` signs the
/// audit chain's checkpoints.
pub fn all(signer: Option<ed25519_dalek::SigningKey>) -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(credentials::Credentials),
        Arc::new(session_history::SessionHistory),
        Arc::new(access_requests::AccessRequests),
        Arc::new(workspaces::Workspaces),
        Arc::new(archival_schedule::ArchivalSchedule),
        Arc::new(audit_log::AuditLog),
        Arc::new(audit_chain::AuditChain {
            signer,
            every: CHECKPOINT_EVERY,
        }),
    ]
}
