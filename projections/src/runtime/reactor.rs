//! Reactors: checkpointed readers of the log that issue commands instead of writing a view (a
//! policy turned on ends the sessions it no longer allows). A reaction runs outside any
//! transaction of the reader — a reader's open transaction would hold back the horizon that the
//! commands' own events must pass — and the checkpoint moves after each reaction, so after a crash
//! the reactor resumes where it stopped and every reaction happens at least once. Reactions must
//! therefore be idempotent; two processes may also run one at the same time.

use async_trait::async_trait;
use sqlx::PgPool;

use crate::runtime::checkpoint::{self, parse_xid8, Cursor};
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

/// Reacts to the next events after the reactor's checkpoint, moving it past each one.
pub async fn react_once(pool: &PgPool, reactor: &dyn Reactor) -> Result<Batch, ProjectionError> {
    let from = checkpoint::current(pool, reactor.name()).await?;
    let mut conn = pool.acquire().await?;
    let xmin: String = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        .fetch_one(&mut *conn)
        .await?;
    let xmin = parse_xid8(&xmin)?;
    let types: Vec<String> = reactor
        .event_types()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let events = events_after(&mut conn, from, Some(&types), BATCH).await?;
    drop(conn);
    for event in &events {
        reactor.react(event).await?;
        checkpoint::advance_past(pool, &[reactor.name()], event.cursor).await?;
    }
    let last = events.last().map_or(from, |e| e.cursor);
    let idle = (events.len() as i64) < BATCH;
    let progress = if idle {
        last.max(Cursor::horizon(xmin))
    } else {
        last
    };
    if progress > last {
        // Every event of its types below the horizon (read before the events) was in this
        // batch: the next pass starts there, not at its last event, however rare its types.
        checkpoint::advance_past(pool, &[reactor.name()], progress).await?;
    }
    Ok(Batch {
        applied: events.len(),
        idle,
        progress,
    })
}
