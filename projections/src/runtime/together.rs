//! One reader for the views of a process: each pass reads the next batch of the log once (one
//! query, each payload parsed once), hands every projector the events of its types it has not
//! seen, and moves all their checkpoints in the same transaction (docs/adr/0023).
//!
//! A projector whose apply fails is left out and the pass is run again without it: the others
//! are never held back by it, and it retries in a transaction of its own until it has caught up.

use std::collections::HashSet;

use sqlx::{PgPool, Row};

use crate::runtime::checkpoint::{self, parse_xid8, Cursor};
use crate::runtime::projector::{ProjectionError, Projector, StoredEvent};
use crate::runtime::runner::{events_after, Batch};
use crate::runtime::sabotage;

/// Events read per pass, shared by every projector of the pass.
pub(crate) const SHARED_BATCH: i64 = 1000;

/// What one shared pass did.
pub(crate) enum Pass {
    /// Every projector applied its events; one `Batch` each, in the order given.
    Applied {
        batches: Vec<Batch>,
        /// The horizon the pass read below (`pg_snapshot_xmin`).
        horizon: u64,
    },
    /// The projector at this index could not apply its events; nothing of the pass was kept.
    Refused(usize, ProjectionError),
}

/// What each projector of a pass was given.
struct Share {
    from: Cursor,
    applied: usize,
}

/// Applies the next batch of the log to every projector of `members` in one transaction that
/// also moves their checkpoints. The events read are those after the furthest-behind checkpoint,
/// below the horizon (as `catch_up_once` reads them), of any type one of them consumes.
pub(crate) async fn catch_up_together(
    pool: &PgPool,
    members: &[&dyn Projector],
) -> Result<Pass, ProjectionError> {
    let names: Vec<String> = members.iter().map(|p| p.name().to_string()).collect();
    let mut tx = checkpoint::begin_view_transaction(pool).await?;
    let (checkpoints, xmin) = lock_all(&mut tx, &names).await?;
    let from = checkpoints.iter().copied().min().unwrap_or_default();
    let types = consumed_types(members);
    let events = events_after(&mut tx, from, types.as_deref(), SHARED_BATCH).await?;
    let idle = (events.len() as i64) < SHARED_BATCH;
    let last = events.last().map_or(from, |e| e.cursor);

    let mut shares = Vec::with_capacity(members.len());
    for (index, (projector, own)) in members.iter().zip(&checkpoints).enumerate() {
        let applied = match apply_share(&mut tx, *projector, *own, &events).await {
            Ok(applied) => applied,
            Err(error) => return Ok(Pass::Refused(index, error)),
        };
        shares.push(Share {
            from: *own,
            applied,
        });
    }
    if last > from {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        checkpoint::advance_past(&mut *tx, &names, last).await?;
    }
    tx.commit().await?;

    let batches = shares
        .iter()
        .map(|share| Batch {
            applied: share.applied,
            idle,
            progress: match idle {
                true => last.max(share.from).max(Cursor::horizon(xmin)),
                false => last.max(share.from),
            },
        })
        .collect();
    Ok(Pass::Applied {
        batches,
        horizon: xmin,
    })
}

/// Hands `projector` the events of `events` after `own` that it consumes; how many it applied.
pub(crate) async fn apply_share(
    conn: &mut sqlx::PgConnection,
    projector: &dyn Projector,
    own: Cursor,
    events: &[StoredEvent],
) -> Result<usize, ProjectionError> {
    let consumes = |e: &StoredEvent| {
        e.cursor > own
            && (projector.reads_every_event()
                || projector.event_types().contains(&e.event_type.as_str()))
    };
    if events.iter().all(consumes) {
        // The whole batch is its own: no copy.
        let events = sabotage::handed(projector.name(), events);
        projector.apply_batch(conn, &events).await?;
        return Ok(events.len());
    }
    let share: Vec<StoredEvent> = events.iter().filter(|e| consumes(e)).cloned().collect();
    if !share.is_empty() {
        let share = sabotage::handed(projector.name(), &share);
        projector.apply_batch(conn, &share).await?;
    }
    Ok(share.len())
}

/// The union of what `members` consume; `None` when one of them reads every event.
pub(crate) fn consumed_types(members: &[&dyn Projector]) -> Option<Vec<String>> {
    if members.iter().any(|p| p.reads_every_event()) {
        return None;
    }
    let types: HashSet<&str> = members
        .iter()
        .flat_map(|p| p.event_types().iter().copied())
        .collect();
    Some(types.into_iter().map(str::to_string).collect())
}

/// Locks the checkpoint of every name (in name order, so that two readers never wait on each
/// other in a cycle), making the missing ones, and reads the horizon in the same statement. The
/// checkpoints are there on every pass but the first after a start or a rebuild: they are made
/// only when the lock finds one missing.
async fn lock_all(
    conn: &mut sqlx::PgConnection,
    names: &[String],
) -> Result<(Vec<Cursor>, u64), sqlx::Error> {
    let mut rows = lock_rows(conn, names).await?;
    if rows.len() < names.len() {
        sqlx::query(
            "INSERT INTO projector_checkpoints (name) SELECT unnest($1::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(names)
        .execute(&mut *conn)
        .await?;
        rows = lock_rows(conn, names).await?;
    }
    let mut xmin = 0;
    let mut found = std::collections::HashMap::new();
    for row in &rows {
        xmin = parse_xid8(row.try_get("xmin")?)?;
        let cursor = Cursor {
            transaction_id: parse_xid8(row.try_get("transaction_id")?)?,
            global_position: row.try_get("global_position")?,
        };
        found.insert(row.try_get::<String, _>("name")?, cursor);
    }
    let checkpoints = names
        .iter()
        .map(|name| found.get(name).copied().unwrap_or_default())
        .collect();
    Ok((checkpoints, xmin))
}

async fn lock_rows(
    conn: &mut sqlx::PgConnection,
    names: &[String],
) -> Result<Vec<sqlx::postgres::PgRow>, sqlx::Error> {
    sqlx::query(
        "SELECT name, transaction_id::text AS transaction_id, global_position,
                pg_snapshot_xmin(pg_current_snapshot())::text AS xmin
         FROM projector_checkpoints WHERE name = ANY($1)
         ORDER BY name FOR UPDATE",
    )
    .bind(names)
    .fetch_all(&mut *conn)
    .await
}

/// Runs `members` on one shared reader until every one has seen every event below the horizon
/// (a rebuild, tests); where they all stand. The first refusal ends it.
pub async fn catch_up_together_fully(
    pool: &PgPool,
    members: &[&dyn Projector],
) -> Result<Cursor, ProjectionError> {
    loop {
        match catch_up_together(pool, members).await? {
            Pass::Applied { batches, .. } => {
                if batches.iter().all(|b| b.idle) {
                    let reached = batches.iter().map(|b| b.progress).min();
                    return Ok(reached.unwrap_or_default());
                }
            }
            Pass::Refused(_, error) => return Err(error),
        }
    }
}
