use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::runtime::checkpoint::{self, parse_xid8, Cursor};
use crate::runtime::projector::{ProjectionError, Projector, StoredEvent};
use crate::runtime::reactor::{react_once, Reactor};
use crate::runtime::together::{catch_up_together, Pass};

const BATCH: i64 = 500;
/// How often an idle runner looks again without being woken. Wake-ups come from LISTEN/NOTIFY and
/// from this process's own commits; polling covers the cases no notification announces (a
/// transaction that held the horizon back and then rolled back).
const POLL: Duration = Duration::from_millis(250);
/// The least time between two passes of a reactor nothing waits for (the mail outbox): it reacts
/// at most this much later, and to many commits at once.
const UNAWAITED_PACE: Duration = Duration::from_millis(50);
/// A horizon that has not moved for this long, below a commit being waited for, is held by a
/// long transaction somewhere on the server: waiting for the views is then pointless.
const HELD_AFTER: Duration = Duration::from_secs(1);
/// Full passes in a row after which the shared reader's views are far enough behind to catch up
/// on readers of their own. One full pass is only a burst: under a load of commands, leaving at
/// once had every view read the same events again on its own, several times over.
const FAR_BEHIND_PASSES: u32 = 3;

/// The horizon as the shared reader last read it.
struct Horizon {
    xmin: u64,
    /// Since when it has stood at `xmin`.
    since: Instant,
    /// When the pass that last read it started (the horizon is read first thing).
    read_at: Instant,
}

impl Horizon {
    /// The horizon a pass that started at `at` read.
    fn read(&mut self, xmin: u64, at: Instant) {
        if xmin != self.xmin {
            self.xmin = xmin;
            self.since = at;
        }
        self.read_at = self.read_at.max(at);
    }

    /// Whether a pass that started after `waiting_since` (so after the commit at `target`) found
    /// the horizon still at or below `target` — an older transaction still running — where it
    /// has stood for `HELD_AFTER` or more.
    fn holds(&self, target: Cursor, waiting_since: Instant) -> bool {
        self.read_at > waiting_since
            && self.xmin <= target.transaction_id
            && self.since.elapsed() >= HELD_AFTER
    }
}

/// What one pass over the log did.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub applied: usize,
    /// Fewer events than a full batch were waiting: the projector has seen every event below the
    /// horizon.
    pub idle: bool,
    /// Everything up to here is reflected in the view.
    pub progress: Cursor,
}

/// Applies the next batch of events to `projector`'s view, in commit order, in one transaction
/// that also moves its checkpoint.
///
/// Only events of transactions older than every transaction still running are read
/// (`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`). A transaction that took its id
/// early and commits late therefore holds the projector back instead of being skipped.
pub async fn catch_up_once(
    pool: &PgPool,
    projector: &dyn Projector,
) -> Result<Batch, ProjectionError> {
    let mut tx = checkpoint::begin_view_transaction(pool).await?;
    // The horizon is read before the events: it only moves forward, so this one is covered by
    // the events query that follows.
    let (from, xmin) = checkpoint::lock_with_horizon(&mut tx, projector.name()).await?;
    let types: Vec<String> = projector
        .event_types()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let types = (!projector.reads_every_event()).then_some(types.as_slice());
    let events = events_after(&mut tx, from, types, BATCH).await?;

    projector
        .apply_batch(&mut tx, &super::sabotage::handed(projector.name(), &events))
        .await?;
    let last = events.last().map_or(from, |e| e.cursor);
    let idle = (events.len() as i64) < BATCH;
    // A pass that had every event of its types below the horizon (read before the events) moves
    // the checkpoint there, not only to its last event: a view of rare types would otherwise
    // read from far back on every pass.
    let progress = if idle {
        last.max(Cursor::horizon(xmin))
    } else {
        last
    };
    if progress != from {
        checkpoint::advance(&mut tx, projector.name(), progress).await?;
    }
    tx.commit().await?;

    Ok(Batch {
        applied: events.len(),
        idle,
        progress,
    })
}

/// Up to `limit` events after `from` in commit order (of `types` only, when given), from
/// transactions older than every transaction still running: a reader that moves its cursor to the
/// last event returned never skips one that commits later.
pub async fn events_after(
    conn: &mut PgConnection,
    from: Cursor,
    types: Option<&[String]>,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT transaction_id::text AS transaction_id, global_position, aggregate_type,
                aggregate_id, sequence, event_type, event_version, payload, metadata
         FROM events
         WHERE ($1::text[] IS NULL OR event_type = ANY($1))
           AND (transaction_id, global_position) > ($2::text::xid8, $3)
           AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY events.transaction_id, events.global_position
         LIMIT $4",
    )
    .bind(types)
    .bind(from.transaction_id.to_string())
    .bind(from.global_position)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let cursor = Cursor {
                transaction_id: parse_xid8(row.try_get("transaction_id")?)?,
                global_position: row.try_get("global_position")?,
            };
            StoredEvent::from_row(row, cursor)
        })
        .collect()
}

/// Runs `projector` until it has seen every event below the horizon. Tests drive views with this
/// instead of sleeping.
pub async fn catch_up(pool: &PgPool, projector: &dyn Projector) -> Result<Cursor, ProjectionError> {
    loop {
        let batch = catch_up_once(pool, projector).await?;
        if batch.idle {
            return Ok(batch.progress);
        }
    }
}

/// How a projector is doing, for `/readyz` and `/metrics`.
#[derive(Debug, Clone)]
pub struct ProjectorStatus {
    pub name: &'static str,
    /// It maintains tables Warden reads (not only a delivery elsewhere).
    pub owns_views: bool,
    pub failing: bool,
    pub last_error: Option<String>,
    pub failures: u64,
    pub applied: u64,
    pub progress: Cursor,
    /// Read for by the process's shared reader (otherwise on a reader of its own).
    pub shared_reader: bool,
}

/// What a runner drives: a projector writing a view, or a reactor issuing commands.
enum Worker {
    View(Arc<dyn Projector>),
    Reactor(Arc<dyn Reactor>),
}

impl Worker {
    fn name(&self) -> &'static str {
        match self {
            Self::View(projector) => projector.name(),
            Self::Reactor(reactor) => reactor.name(),
        }
    }

    fn event_types(&self) -> &'static [&'static str] {
        match self {
            Self::View(projector) => projector.event_types(),
            Self::Reactor(reactor) => reactor.event_types(),
        }
    }

    /// Whether it reads any of `event_types`.
    fn consumes_any(&self, event_types: &[&str]) -> bool {
        match self {
            Self::View(projector) if projector.reads_every_event() => true,
            _ => {
                let mine = self.event_types();
                event_types.iter().any(|t| mine.contains(t))
            }
        }
    }

    /// A view in PostgreSQL may share the reader's transaction; a delivery elsewhere and a
    /// reactor (which issues commands) run alone.
    fn shares_reader(&self) -> bool {
        matches!(self, Self::View(projector) if !projector.tables().is_empty())
    }

    fn owns_views(&self) -> bool {
        match self {
            Self::View(projector) => !projector.tables().is_empty(),
            // What it does is in force only once it has reacted: as needed as a view.
            Self::Reactor(reactor) => reactor.awaited(),
        }
    }

    async fn step(&self, pool: &PgPool) -> Result<Batch, ProjectionError> {
        match self {
            Self::View(projector) => catch_up_once(pool, projector.as_ref()).await,
            Self::Reactor(reactor) => react_once(pool, reactor.as_ref()).await,
        }
    }

    async fn catch_up(&self, pool: &PgPool) -> Result<Cursor, ProjectionError> {
        loop {
            let batch = self.step(pool).await?;
            if batch.idle {
                return Ok(batch.progress);
            }
        }
    }
}

struct Runner {
    worker: Worker,
    wake: Notify,
    /// Read for by the process's shared reader (`false`: runs alone, in its own task).
    grouped: AtomicBool,
    /// Tells the runner's own task that it has left the shared reader.
    left: Notify,
    progress: watch::Sender<Cursor>,
    failing: AtomicBool,
    failures: AtomicU64,
    applied: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// The projectors of one Warden process: at the head of the log the views share one reader
/// (`together`); far behind it each view catches up on its own reader, in parallel. A view that
/// fails, a delivery elsewhere and each reactor tail the log in a task of their own.
pub struct Projections {
    pool: PgPool,
    runners: Vec<Arc<Runner>>,
    /// Wakes the shared reader.
    shared: Notify,
    horizon: Mutex<Horizon>,
    /// Waits for the views cut short because a long transaction held the horizon.
    held_waits: AtomicU64,
    /// Bumped whenever a commit is announced, for readers that tail the log themselves.
    commits: watch::Sender<u64>,
}

impl Projections {
    pub fn new(pool: PgPool, projectors: Vec<Arc<dyn Projector>>) -> Arc<Self> {
        Self::with_reactors(pool, projectors, Vec::new())
    }

    /// Projectors and reactors, each run by a task of its own.
    pub fn with_reactors(
        pool: PgPool,
        projectors: Vec<Arc<dyn Projector>>,
        reactors: Vec<Arc<dyn Reactor>>,
    ) -> Arc<Self> {
        let workers = projectors
            .into_iter()
            .map(Worker::View)
            .chain(reactors.into_iter().map(Worker::Reactor));
        let runners = workers
            .map(|worker| {
                Arc::new(Runner {
                    grouped: AtomicBool::new(worker.shares_reader()),
                    worker,
                    wake: Notify::new(),
                    left: Notify::new(),
                    progress: watch::channel(Cursor::default()).0,
                    failing: AtomicBool::new(false),
                    failures: AtomicU64::new(0),
                    applied: AtomicU64::new(0),
                    last_error: Mutex::new(None),
                })
            })
            .collect();
        Arc::new(Self {
            pool,
            runners,
            shared: Notify::new(),
            horizon: Mutex::new(Horizon {
                xmin: 0,
                since: Instant::now(),
                read_at: Instant::now(),
            }),
            held_waits: AtomicU64::new(0),
            commits: watch::channel(0).0,
        })
    }

    /// Starts the shared reader, one task per projector (idle while the shared reader reads for
    /// it) and one that listens for commits.
    pub fn start(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let mut tasks: Vec<JoinHandle<()>> = self
            .runners
            .iter()
            .map(|runner| tokio::spawn(run(self.clone(), runner.clone())))
            .collect();
        tasks.push(tokio::spawn(read_together(self.clone())));
        tasks.push(tokio::spawn(listen(self.clone())));
        tasks
    }

    /// Asks every projector (and every tailing reader) to look at the log now.
    pub fn wake(&self) {
        for runner in &self.runners {
            runner.wake.notify_one();
        }
        self.shared.notify_one();
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Asks the readers that consume one of `event_types` to look at the log now (the others
    /// look again at their next poll, within 250 ms); readers tailing the log are told too.
    pub fn wake_for(&self, event_types: &[&str]) {
        let mut shared = false;
        for runner in &self.runners {
            if runner.worker.consumes_any(event_types) {
                runner.wake.notify_one();
                shared |= runner.grouped.load(Ordering::Relaxed);
            }
        }
        if shared {
            self.shared.notify_one();
        }
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Asks `runner` to look at the log now, wherever it reads.
    fn wake_runner(&self, runner: &Runner) {
        runner.wake.notify_one();
        self.shared.notify_one();
    }

    /// Changes whenever new events may have become readable.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Waits until every view reflects the event at `target` (read-your-writes), at most
    /// `timeout`. Returns whether they all did.
    pub async fn wait_for(&self, target: Cursor, timeout: Duration) -> bool {
        self.wait_for_views_of(target, None, timeout).await
    }

    /// Like `wait_for`, but only for the views that consume one of `event_types` (all views when
    /// `None`): the views a command's events affect.
    pub async fn wait_for_views_of(
        &self,
        target: Cursor,
        event_types: Option<&[String]>,
        timeout: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let waiting_since = Instant::now();
        let affected = self.runners.iter().filter(|runner| {
            let awaited = match &runner.worker {
                Worker::View(_) => true,
                Worker::Reactor(reactor) => reactor.awaited(),
            };
            awaited
                && event_types.is_none_or(|types| {
                    runner
                        .worker
                        .event_types()
                        .iter()
                        .any(|t| types.iter().any(|e| e == t))
                })
        });
        for runner in affected {
            let mut progress = runner.progress.subscribe();
            loop {
                if *progress.borrow_and_update() >= target {
                    break;
                }
                if self.horizon_holds(target, waiting_since) {
                    self.held_waits.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                self.wake_runner(runner);
                // Wake again shortly: the horizon may be held by a transaction that ends without
                // a notification.
                let step = tokio::time::Instant::now() + Duration::from_millis(20);
                let until = step.min(deadline);
                match tokio::time::timeout_at(until, progress.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return false,
                    Err(_) if tokio::time::Instant::now() >= deadline => return false,
                    Err(_) => {}
                }
            }
        }
        true
    }

    /// Whether a long transaction on the server holds the horizon at or below `target`: the
    /// views cannot pass it until that transaction ends, however long one waits.
    fn horizon_holds(&self, target: Cursor, waiting_since: Instant) -> bool {
        self.horizon
            .lock()
            .map(|h| h.holds(target, waiting_since))
            .unwrap_or(false)
    }

    /// How many waits for the views ended early because the horizon was held.
    pub fn held_waits(&self) -> u64 {
        self.held_waits.load(Ordering::Relaxed)
    }

    /// Brings every view up to date in this task (tests, replay).
    pub async fn catch_up_all(&self) -> Result<(), ProjectionError> {
        for runner in &self.runners {
            let progress = runner.worker.catch_up(&self.pool).await?;
            runner.progress.send_if_modified(|p| advance(p, progress));
        }
        Ok(())
    }

    pub fn statuses(&self) -> Vec<ProjectorStatus> {
        self.runners
            .iter()
            .map(|r| ProjectorStatus {
                name: r.worker.name(),
                owns_views: r.worker.owns_views(),
                failing: r.failing.load(Ordering::Relaxed),
                last_error: r.last_error.lock().map(|e| e.clone()).unwrap_or(None),
                failures: r.failures.load(Ordering::Relaxed),
                applied: r.applied.load(Ordering::Relaxed),
                progress: *r.progress.borrow(),
                shared_reader: r.grouped.load(Ordering::Relaxed),
            })
            .collect()
    }
}

fn advance(current: &mut Cursor, to: Cursor) -> bool {
    if to > *current {
        *current = to;
        true
    } else {
        false
    }
}

impl Runner {
    fn applied(&self, batch: &Batch) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(projector = self.worker.name(), "projector recovered");
        }
        self.applied
            .fetch_add(batch.applied as u64, Ordering::Relaxed);
        self.progress
            .send_if_modified(|p| advance(p, batch.progress));
    }

    /// Never skip: the same event is retried until it applies, and the failure is visible in
    /// /readyz, /metrics and the log meanwhile.
    async fn failed(&self, pool: &PgPool, error: &ProjectionError) {
        let name = self.worker.name();
        let message = error.to_string();
        tracing::error!(projector = name, error = %message, "projector failed");
        self.mark_failed(&message);
        let _ = checkpoint::record_error(pool, &[name], &message).await;
    }

    fn mark_failed(&self, message: &str) {
        self.failing.store(true, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(message.to_string());
        }
    }

    /// Leaves the shared reader: the runner's own task reads for it until it has caught up.
    fn leave(&self) {
        self.grouped.store(false, Ordering::Relaxed);
        self.left.notify_one();
    }
}

/// The task of one runner: idle while the shared reader reads for it, otherwise reading alone,
/// and back to the shared reader once it has seen every event below the horizon.
async fn run(projections: Arc<Projections>, runner: Arc<Runner>) {
    let pool = &projections.pool;
    let mut backoff = Duration::from_millis(100);
    loop {
        if runner.grouped.load(Ordering::Relaxed) {
            runner.left.notified().await;
            continue;
        }
        match runner.worker.step(pool).await {
            Ok(batch) => {
                backoff = Duration::from_millis(100);
                runner.applied(&batch);
                if !batch.idle {
                    continue;
                }
                if runner.worker.shares_reader() {
                    tracing::info!(
                        projector = runner.worker.name(),
                        "back on the shared reader"
                    );
                    runner.grouped.store(true, Ordering::Relaxed);
                    projections.shared.notify_one();
                    continue;
                }
            }
            Err(error) => {
                runner.failed(pool, &error).await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        }
        if matches!(&runner.worker, Worker::Reactor(reactor) if !reactor.awaited()) {
            // Nothing waits for it: under a load of commands, a pass for every few commits
            // would be most of its cost. A wake meanwhile is kept for after the pause.
            tokio::time::sleep(UNAWAITED_PACE).await;
        }
        tokio::select! {
            _ = runner.wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// The shared reader: one pass over the log for every view that reads with it.
async fn read_together(projections: Arc<Projections>) {
    let pool = &projections.pool;
    let mut backoff = Duration::from_millis(100);
    let mut full_passes = 0;
    loop {
        let members: Vec<&Arc<Runner>> = projections
            .runners
            .iter()
            .filter(|r| r.grouped.load(Ordering::Relaxed))
            .collect();
        let views: Vec<&dyn Projector> = members
            .iter()
            .filter_map(|r| match &r.worker {
                Worker::View(projector) => Some(projector.as_ref()),
                Worker::Reactor(_) => None,
            })
            .collect();
        if !views.is_empty() {
            let started = Instant::now();
            match catch_up_together(pool, &views).await {
                Ok(Pass::Applied { batches, horizon }) => {
                    backoff = Duration::from_millis(100);
                    if let Ok(mut seen) = projections.horizon.lock() {
                        seen.read(horizon, started);
                    }
                    for (runner, batch) in members.iter().zip(&batches) {
                        runner.applied(batch);
                    }
                    if batches.iter().all(|b| b.idle) {
                        full_passes = 0;
                    } else {
                        full_passes += 1;
                        if full_passes < FAR_BEHIND_PASSES {
                            // A burst of commits: the next pass reads the rest.
                            continue;
                        }
                        // Far behind the head (a start after a while, a view rebuilt): each
                        // view catches up on its own reader, in parallel, and comes back once
                        // it has.
                        full_passes = 0;
                        tracing::info!("the views catch up on their own readers");
                        for runner in &members {
                            runner.leave();
                        }
                        continue;
                    }
                }
                Ok(Pass::Refused(index, error)) => {
                    // Without it, at once: the others go on.
                    members[index].failed(pool, &error).await;
                    members[index].leave();
                    continue;
                }
                Err(error) => {
                    let message = error.to_string();
                    tracing::error!(error = %message, "the shared reader failed");
                    for runner in &members {
                        runner.mark_failed(&message);
                    }
                    let names: Vec<&str> = views.iter().map(|v| v.name()).collect();
                    let _ = checkpoint::record_error(pool, &names, &message).await;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        tokio::select! {
            _ = projections.shared.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn listen(projections: Arc<Projections>) {
    loop {
        let mut listener = match PgListener::connect_with(&projections.pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for commits; polling meanwhile");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen("warden_events").await {
            tracing::warn!(%error, "cannot listen for commits; polling meanwhile");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let own = projections
            .pool
            .connect_options()
            .get_application_name()
            .map(str::to_owned);
        while let Ok(notification) = listener.recv().await {
            match announced(notification.payload(), own.as_deref()) {
                Announced::Own => {}
                Announced::Types(types) if !types.is_empty() => projections.wake_for(&types),
                Announced::Types(_) => projections.wake(),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a notification on `warden_events` announces to the process whose connections are named
/// `own`.
#[derive(Debug, PartialEq)]
enum Announced<'a> {
    /// A commit of this process's own: its readers were woken when it returned.
    Own,
    /// A commit elsewhere with these event types; none named (the revocation barrier's
    /// notification, an older trigger's) wakes every reader.
    Types(Vec<&'a str>),
}

/// Reads a notification: the appending connection's name on a first line, then the event types.
fn announced<'a>(payload: &'a str, own: Option<&str>) -> Announced<'a> {
    let (writer, types) = payload.split_once('\n').unwrap_or(("", payload));
    if !writer.is_empty() && Some(writer) == own {
        return Announced::Own;
    }
    Announced::Types(types.split_whitespace().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_passes_over_its_own_commits_and_wakes_for_everyone_elses() {
        let own = Some("warden-1");
        assert_eq!(announced("warden-1\na b", own), Announced::Own);
        assert_eq!(
            announced("warden-2\na b", own),
            Announced::Types(vec!["a", "b"])
        );
        // A connection that is not Warden's, an unnamed one, the barrier's empty notification
        // and an older trigger's payload are never taken for this process's own.
        assert_eq!(announced("psql\na", own), Announced::Types(vec!["a"]));
        assert_eq!(announced("\na", own), Announced::Types(vec!["a"]));
        assert_eq!(announced("\na", Some("")), Announced::Types(vec!["a"]));
        assert_eq!(announced("", own), Announced::Types(vec![]));
        assert_eq!(announced("a b", own), Announced::Types(vec!["a", "b"]));
        assert_eq!(announced("warden-1\na", None), Announced::Types(vec!["a"]));
    }

    fn at(tx: u64) -> Cursor {
        Cursor {
            transaction_id: tx,
            global_position: 1,
        }
    }

    #[test]
    fn a_pass_that_began_before_the_commit_never_says_the_horizon_is_held() {
        let now = Instant::now();
        let long_ago = now - Duration::from_secs(600);
        // A quiet server: the horizon stood at 100 (the next id) for ten minutes, then the
        // commit being waited for took id 100.
        let mut horizon = Horizon {
            xmin: 100,
            since: long_ago,
            read_at: long_ago,
        };
        let waiting_since = now;
        horizon.read(100, now - Duration::from_millis(1));
        assert!(
            !horizon.holds(at(100), waiting_since),
            "read before the commit"
        );
        horizon.read(101, now + Duration::from_millis(1));
        assert!(
            !horizon.holds(at(100), waiting_since),
            "the horizon passed it"
        );
    }

    #[test]
    fn an_older_transaction_standing_for_a_second_holds_the_horizon() {
        let now = Instant::now();
        let mut horizon = Horizon {
            xmin: 0,
            since: now,
            read_at: now,
        };
        horizon.read(90, now - Duration::from_secs(2));
        let waiting_since = now;
        assert!(
            !horizon.holds(at(100), waiting_since),
            "no pass since the wait began"
        );
        horizon.read(90, now + Duration::from_millis(1));
        assert!(horizon.holds(at(100), waiting_since));
        assert!(
            !horizon.holds(at(80), waiting_since),
            "below the horizon: not held"
        );
    }
}
