//! Views rebuilt from nothing on one reader, applied in parallel: each batch of the log is read
//! and parsed once, and every view applies it on a connection of its own, in a transaction that
//! moves its own checkpoint, while the reader fetches the next batch (docs/adr/0023).
//!
//! This is how `warden replay` builds its copies. The server's shared reader applies its views
//! one after another in one transaction instead: there a view that fails is left out and the
//! pass run again, and every view of a pass is in force at the same commit.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::runtime::checkpoint::{self, Cursor};
use crate::runtime::progress::Progress;
use crate::runtime::projector::{ProjectionError, Projector, StoredEvent};
use crate::runtime::runner::events_after;
use crate::runtime::together::{apply_share, consumed_types};

/// Events read per batch.
const REBUILD_BATCH: i64 = 4000;
/// Batches read ahead of the slowest view.
const AHEAD: usize = 3;

/// Brings every one of `projectors` from its checkpoint to the horizon as the reader last saw
/// it. `stages[i]` names the progress of `projectors[i]`, out of `total` positions.
pub async fn rebuild_together(
    pool: &PgPool,
    projectors: &[Arc<dyn Projector>],
    progress: &dyn Progress,
    stages: &[String],
    total: u64,
) -> Result<(), ProjectionError> {
    let (reached_tx, mut reached) = mpsc::unbounded_channel();
    let mut appliers = JoinSet::new();
    let mut feeds = Vec::with_capacity(projectors.len());
    for (index, projector) in projectors.iter().enumerate() {
        let (feed, batches) = mpsc::channel(AHEAD);
        feeds.push(feed);
        appliers.spawn(apply_each(
            pool.clone(),
            Arc::clone(projector),
            batches,
            index,
            reached_tx.clone(),
        ));
    }
    drop(reached_tx);
    let members: Vec<&dyn Projector> = projectors.iter().map(|p| p.as_ref()).collect();
    let types = consumed_types(&members);
    let from = lowest_checkpoint(pool, &members).await?;
    let read = {
        let read = read_and_hand_out(pool, from, types.as_deref(), &feeds);
        tokio::pin!(read);
        loop {
            tokio::select! {
                read = &mut read => break read,
                Some((index, at)) = reached.recv() => report(progress, stages, index, at, total),
            }
        }
    };
    drop(feeds);
    // Until every view has ended: each holds a sender.
    while let Some((index, at)) = reached.recv().await {
        report(progress, stages, index, at, total);
    }
    let mut first_error = read.err();
    while let Some(done) = appliers.join_next().await {
        match done {
            Ok(result) => first_error = first_error.or(result.err()),
            // A view that panics is a defect to see, not an error to report.
            Err(stopped) if stopped.is_panic() => std::panic::resume_unwind(stopped.into_panic()),
            Err(_) => {}
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    for stage in stages {
        progress.update(stage, total, total);
        progress.finish(stage);
    }
    Ok(())
}

fn report(progress: &dyn Progress, stages: &[String], index: usize, at: Cursor, total: u64) {
    if let Some(stage) = stages.get(index) {
        let done = u64::try_from(at.global_position).unwrap_or_default();
        progress.update(stage, done.min(total), total);
    }
}

/// Reads the log from `from` to the horizon in batches and hands each to every feed; stops early
/// when a view has stopped taking them (its error comes from its task).
async fn read_and_hand_out(
    pool: &PgPool,
    mut from: Cursor,
    types: Option<&[String]>,
    feeds: &[mpsc::Sender<Arc<[StoredEvent]>>],
) -> Result<(), ProjectionError> {
    let mut conn = pool.acquire().await?;
    loop {
        let events = events_after(&mut conn, from, types, REBUILD_BATCH).await?;
        let Some(last) = events.last().map(|e| e.cursor) else {
            return Ok(());
        };
        let full = events.len() as i64 == REBUILD_BATCH;
        let batch: Arc<[StoredEvent]> = events.into();
        for feed in feeds {
            if feed.send(Arc::clone(&batch)).await.is_err() {
                return Ok(());
            }
        }
        from = last;
        if !full {
            return Ok(());
        }
    }
}

/// One view's side: every batch applied in order, each in a transaction that moves its
/// checkpoint to the batch's last event.
async fn apply_each(
    pool: PgPool,
    projector: Arc<dyn Projector>,
    mut batches: mpsc::Receiver<Arc<[StoredEvent]>>,
    index: usize,
    reached: mpsc::UnboundedSender<(usize, Cursor)>,
) -> Result<(), ProjectionError> {
    while let Some(batch) = batches.recv().await {
        let Some(last) = batch.last().map(|e| e.cursor) else {
            continue;
        };
        let mut tx = checkpoint::begin_view_transaction(&pool).await?;
        let own = checkpoint::lock(&mut tx, projector.name()).await?;
        apply_share(&mut tx, projector.as_ref(), own, &batch).await?;
        checkpoint::advance_past(&mut *tx, &[projector.name()], last).await?;
        tx.commit().await?;
        let _ = reached.send((index, last));
    }
    Ok(())
}

async fn lowest_checkpoint(
    pool: &PgPool,
    members: &[&dyn Projector],
) -> Result<Cursor, sqlx::Error> {
    let mut lowest: Option<Cursor> = None;
    for member in members {
        let at = checkpoint::current(pool, member.name()).await?;
        lowest = Some(lowest.map_or(at, |l| l.min(at)));
    }
    Ok(lowest.unwrap_or_default())
}
