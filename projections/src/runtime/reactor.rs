//! Reactors: checkpointed readers of the log that issue commands instead of writing a view (a
//! policy turned on ends the sessions it no longer allows). A reaction runs outside any
//! transaction of the reader — a reader's open transaction would hold back the horizon that the
//! commands' own events must pass — and the checkpoint moves after each batch of reactions (to
//! the last one done when one fails), so after a crash the reactor resumes at most a batch back
//! and every reaction happens at least once. Reactions must therefore be idempotent; two
//! processes may also run one at the same time.

use async_trait::async_trait;
use sqlx::PgPool;

use crate::runtime::checkpoint::{self, Cursor};
use crate::runtime::projector::{ProjectionError, StoredEvent};
use crate::runtime::runner::{events_after, Batch};

const BATCH: i64 = 100;

#[async_trait]
pub trait Reactor: Send + Sync {
    fn name(&self) -> &'static str;
    fn event_types(&self) -> &'static [&'static str];
    /// Whether a command waits for this reactor like for a view (read-your-writes). A delivery
    /// outside Warden, such as mail, is not waited for.
    fn awaited(&self) -> bool {
        true
    }
    /// Issues the commands `event` calls for and returns once they are in force.
    async fn react(&self, event: &StoredEvent) -> Result<(), ProjectionError>;
}

/// Reacts to the next events after the reactor's checkpoint, then moves it past the last one
/// reacted to, in one statement for the batch (past the horizon when the batch had every event
/// of its types below it). A crash in between makes the next pass react again to some of the
/// same events, which reactions are built to bear.
pub async fn react_once(pool: &PgPool, reactor: &dyn Reactor) -> Result<Batch, ProjectionError> {
    let mut conn = pool.acquire().await?;
    let (from, xmin) = checkpoint::current_with_horizon(&mut conn, reactor.name()).await?;
    let types: Vec<String> = reactor
        .event_types()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let events = events_after(&mut conn, from, Some(&types), BATCH).await?;
    drop(conn);
    let mut reacted = from;
    for event in &events {
        if let Err(error) = reactor.react(event).await {
            // What went before stays done: the next pass starts at the event that failed.
            if reacted > from {
                checkpoint::advance_past(pool, &[reactor.name()], reacted).await?;
            }
            return Err(error);
        }
        reacted = event.cursor;
    }
    let idle = (events.len() as i64) < BATCH;
    let progress = if idle {
        reacted.max(Cursor::horizon(xmin))
    } else {
        reacted
    };
    if progress > from {
        checkpoint::advance_past(pool, &[reactor.name()], progress).await?;
    }
    Ok(Batch {
        applied: events.len(),
        idle,
        progress,
    })
}
