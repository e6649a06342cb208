//! Warden's read side: the projector runtime that tails the event log in commit order
//! (`runtime`), one module per view that writes its tables (`views`), and beside each the SQL
//! that reads them (`queries`), so a table's writer and readers are in one place.
//!
//! Depends on the domain crate for event shapes and on PostgreSQL; never on HTTP. Views make no
//! decisions: they record what the log says so that the server can answer quickly.

pub mod queries;
mod runtime;
pub mod views;

pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use runtime::checkpoint::Cursor;
pub use runtime::progress::{Progress, Silent};
pub use runtime::projector::{event_body, ProjectionError, Projector, StoredEvent};
pub use runtime::reactor::{react_once, Reactor};
pub use runtime::replay;
pub use runtime::runner::{
    catch_up, catch_up_once, events_after, Batch, Projections, ProjectorStatus,
};
pub use runtime::together::catch_up_together_fully;
pub use views::{audit_chain, audit_log};

use std::sync::Arc;

/// Signed audit checkpoints are written every this many events (and by a ticker in between).
pub const CHECKPOINT_EVERY: i64 = 1000;

/// Every projector Warden runs, in the order their views are usually read. `signer` signs the
/// audit chain's checkpoints.
pub fn all(signer: Option<ed25519_dalek::SigningKey>) -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(views::credentials::Credentials),
        Arc::new(views::session_history::SessionHistory),
        Arc::new(views::access_requests::AccessRequests),
        Arc::new(views::workspaces::Workspaces),
        Arc::new(views::archival_schedule::ArchivalSchedule),
        Arc::new(views::audit_log::AuditLog),
        Arc::new(views::audit_chain::AuditChain {
            signer,
            every: CHECKPOINT_EVERY,
        }),
    ]
}
