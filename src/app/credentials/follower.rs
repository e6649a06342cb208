//! Each process follows the log for its credential cache: woken by the commits' notification,
//! it reads every event committed since its last read (in commit order, nothing skipped: it
//! re-reads from the xmin horizon, so a transaction that commits late is still seen), drops the
//! entries of the accounts concerned, then renews its lease with the barrier generation it has
//! applied (docs/adr/0015). Any failure clears the cache and loses the lease until the follower
//! has read again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::cache::{Changes, CredentialCache};
use crate::adapters::barrier::{self, RENEW_EVERY};

/// How often the follower reads without being woken (a lost notification costs at most this).
const POLL: Duration = Duration::from_millis(500);

pub struct Follower {
    pub pool: PgPool,
    pub cache: Arc<CredentialCache>,
    pub process: Uuid,
    pub host: String,
}

/// Where the follower is in the log: every transaction below `horizon` is read; the events of
/// later ones already applied are remembered so they are applied once.
#[derive(Default)]
struct Position {
    horizon: Option<i64>,
    seen: HashMap<i64, i64>,
}

struct Appended {
    aggregate_type: String,
    aggregate_id: String,
    event_type: String,
    global_position: i64,
    transaction_id: i64,
}

/// A row of the follower's read: the horizon, and an event when there is one.
#[derive(sqlx::FromRow)]
struct Read {
    xmin: i64,
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    event_type: Option<String>,
    global_position: Option<i64>,
    transaction_id: Option<i64>,
}

impl Read {
    fn appended(self) -> Option<Appended> {
        Some(Appended {
            aggregate_type: self.aggregate_type?,
            aggregate_id: self.aggregate_id?,
            event_type: self.event_type?,
            global_position: self.global_position?,
            transaction_id: self.transaction_id?,
        })
    }
}

impl Follower {
    pub async fn run(self) {
        loop {
            if let Err(error) = self.follow().await {
                self.cache.lease().lose();
                self.cache.clear();
                tracing::warn!(%error, "credential cache cleared: the log cannot be followed");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }

    async fn follow(&self) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen("warden_events").await?;
        let mut conn = PgConnection::connect_with(&self.pool.connect_options()).await?;
        barrier::register(&self.pool, self.process, &self.host).await?;
        // Nothing before this read matters: the cache is empty and every entry is built from
        // the aggregates as they are now.
        self.cache.clear();
        let mut position = Position::default();
        let mut reported: Option<(i64, Instant)> = None;
        loop {
            let sent = Instant::now();
            let generation = self.read(&mut conn, &mut position).await?;
            let due = reported.is_none_or(|(g, at)| g < generation || at.elapsed() >= RENEW_EVERY);
            if due {
                if !barrier::renew(&mut conn, self.process, generation).await? {
                    // Others may have stopped waiting for this process: forget everything.
                    self.cache.clear();
                    barrier::register(&self.pool, self.process, &self.host).await?;
                }
                self.cache.lease().renewed(sent);
                reported = Some((generation, sent));
            }
            tokio::select! {
                notified = listener.try_recv() => {
                    if notified?.is_none() {
                        return Err(sqlx::Error::Protocol("the log's notifications stopped".into()));
                    }
                }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Applies every event committed since the last read; the generation read before it.
    async fn read(
        &self,
        conn: &mut PgConnection,
        position: &mut Position,
    ) -> Result<i64, sqlx::Error> {
        let generation = barrier::current_generation(conn).await?;
        // The horizon and the events from the last one, in one statement and so one snapshot:
        // every transaction below the new horizon has ended and its events are in the rows.
        let rows: Vec<Read> = sqlx::query_as(
            "WITH now AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin)
             SELECT now.xmin, e.aggregate_type, e.aggregate_id, e.event_type, e.global_position,
                    e.transaction_id::text::bigint AS transaction_id
             FROM now LEFT JOIN events e
               ON $1::bigint IS NOT NULL AND e.transaction_id >= $1::bigint::text::xid8
             ORDER BY e.transaction_id, e.global_position",
        )
        .bind(position.horizon)
        .fetch_all(&mut *conn)
        .await?;
        let Some(xmin) = rows.first().map(|row| row.xmin) else {
            return Err(sqlx::Error::RowNotFound);
        };
        let Some(horizon) = position.horizon else {
            position.horizon = Some(xmin);
            return Ok(generation);
        };
        let appended: Vec<Appended> = rows.into_iter().filter_map(Read::appended).collect();
        self.apply(&appended, position);
        position.horizon = Some(xmin.max(horizon));
        let kept = position.horizon.unwrap_or(xmin);
        position.seen.retain(|_, tx| *tx >= kept);
        Ok(generation)
    }

    fn apply(&self, appended: &[Appended], position: &mut Position) {
        let mut changes = Changes::default();
        for event in appended {
            let new = position
                .seen
                .insert(event.global_position, event.transaction_id)
                .is_none();
            if new {
                changes.note(
                    &event.aggregate_type,
                    &event.aggregate_id,
                    &event.event_type,
                );
            }
        }
        self.cache.apply(&changes);
    }
}
