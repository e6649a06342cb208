//! The projector runtime reads the log in commit order and never skips an event of a transaction
//! that commits late. Each scenario also runs a naive `global_position > last` reader, which
//! fails where the runtime must not.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use sqlx::{PgConnection, PgPool};
use warden::startup::migrate;
use warden_projections::{
    catch_up, catch_up_once, events_after, react_once, Cursor, ProjectionError, Projections,
    Projector, Reactor, StoredEvent,
};

use crate::helpers::{fresh_database, head, settle};

/// Records every delivery, duplicates included, in arrival order.
struct Recorder;

#[async_trait]
impl Projector for Recorder {
    fn name(&self) -> &'static str {
        "test_recorder"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_deliveries"]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["test.happened"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        record(conn, "test_deliveries", event).await
    }
}

/// One delivery of `event` into `table`.
async fn record(
    conn: &mut PgConnection,
    table: &str,
    event: &StoredEvent,
) -> Result<(), ProjectionError> {
    sqlx::query(&format!(
        "INSERT INTO {table} (aggregate_id, sequence) VALUES ($1, $2)"
    ))
    .bind(&event.aggregate_id)
    .bind(event.sequence)
    .execute(conn)
    .await?;
    Ok(())
}

/// Fails once, at the event with this aggregate id, after applying those before it.
struct FailsOnceAt(&'static str, AtomicBool);

#[async_trait]
impl Projector for FailsOnceAt {
    fn name(&self) -> &'static str {
        "test_recorder"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_deliveries"]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["test.happened"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_id == self.0 && !self.1.swap(true, Ordering::SeqCst) {
            return Err(ProjectionError::Database(sqlx::Error::Protocol(
                "injected failure".into(),
            )));
        }
        Recorder.apply(conn, event).await
    }
}

async fn log() -> PgPool {
    let url = fresh_database().await;
    let pool = PgPool::connect(&url).await.expect("pool");
    migrate(&pool).await.expect("migrated");
    sqlx::query(
        "CREATE TABLE test_deliveries (delivery bigserial PRIMARY KEY, aggregate_id text NOT NULL,
                                       sequence bigint NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("deliveries table");
    pool
}

pub async fn append(conn: &mut PgConnection, aggregate_id: &str, sequence: i64) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('test', $1, $2, 'test.happened', '1.0', '{}', '{}')",
    )
    .bind(aggregate_id)
    .bind(sequence)
    .execute(conn)
    .await
    .expect("appended");
}

async fn append_committed(pool: &PgPool, aggregate_id: &str) {
    let mut conn = pool.acquire().await.expect("connection");
    append(&mut conn, aggregate_id, 1).await;
}

async fn delivered(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT aggregate_id FROM test_deliveries ORDER BY delivery")
        .fetch_all(pool)
        .await
        .expect("deliveries")
}

/// Settles, then runs `projector` until it is idle: it has then seen every committed event.
async fn catch_up_fully(pool: &PgPool, projector: &dyn Projector) {
    settle(pool).await;
    let progress = catch_up(pool, projector).await.expect("catch up");
    assert!(progress > head(pool).await);
}

/// The wrong way to tail a log: by position alone, with no regard for open transactions.
struct NaiveReader {
    last: i64,
    seen: Vec<String>,
}

impl NaiveReader {
    fn new() -> Self {
        Self {
            last: 0,
            seen: Vec::new(),
        }
    }

    async fn read(&mut self, pool: &PgPool) {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT global_position, aggregate_id FROM events
             WHERE global_position > $1 ORDER BY global_position",
        )
        .bind(self.last)
        .fetch_all(pool)
        .await
        .expect("naive read");
        for (position, id) in rows {
            self.last = position;
            self.seen.push(id);
        }
    }
}

#[tokio::test]
async fn an_uncommitted_earlier_event_holds_the_projector_until_it_commits() {
    let pool = log().await;
    let mut naive = NaiveReader::new();

    let mut held = pool.begin().await.expect("tx");
    append(&mut held, "held", 1).await;
    append_committed(&pool, "later").await;

    catch_up(&pool, &Recorder).await.expect("catch up");
    assert!(
        delivered(&pool).await.is_empty(),
        "nothing passes the held event"
    );
    naive.read(&pool).await;
    assert_eq!(naive.seen, vec!["later"]);

    held.commit().await.expect("commit");
    catch_up_fully(&pool, &Recorder).await;
    assert_eq!(delivered(&pool).await, vec!["held", "later"]);
    catch_up_fully(&pool, &Recorder).await;
    assert_eq!(
        delivered(&pool).await,
        vec!["held", "later"],
        "exactly once"
    );

    // The naive reader had already moved past the held event's position and never sees it.
    naive.read(&pool).await;
    assert_eq!(naive.seen, vec!["later"]);
}

#[tokio::test]
async fn a_transaction_that_took_its_id_early_is_delivered_in_transaction_order() {
    let pool = log().await;
    let mut naive = NaiveReader::new();

    let mut early = pool.begin().await.expect("tx");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *early)
        .await
        .expect("xid taken");
    append_committed(&pool, "committed first").await;
    catch_up(&pool, &Recorder).await.expect("catch up");
    assert!(delivered(&pool).await.is_empty());
    naive.read(&pool).await;

    // Older transaction id, higher position.
    append(&mut early, "early id", 1).await;
    early.commit().await.expect("commit");
    catch_up_fully(&pool, &Recorder).await;
    assert_eq!(delivered(&pool).await, vec!["early id", "committed first"]);

    let positions: Vec<(String, i64)> =
        sqlx::query_as("SELECT aggregate_id, global_position FROM events ORDER BY global_position")
            .fetch_all(&pool)
            .await
            .expect("events");
    assert_eq!(
        positions[0].0, "committed first",
        "the position order differs"
    );
    naive.read(&pool).await;
    assert_eq!(
        naive.seen,
        vec!["committed first", "early id"],
        "position order"
    );
}

#[tokio::test]
async fn a_rolled_back_transaction_does_not_stall_the_projector() {
    let pool = log().await;
    let mut abandoned = pool.begin().await.expect("tx");
    append(&mut abandoned, "rolled back", 1).await;
    append_committed(&pool, "kept").await;
    catch_up(&pool, &Recorder).await.expect("catch up");
    assert!(delivered(&pool).await.is_empty());
    abandoned.rollback().await.expect("rollback");
    catch_up_fully(&pool, &Recorder).await;
    assert_eq!(delivered(&pool).await, vec!["kept"]);
}

#[tokio::test]
async fn a_failure_or_restart_mid_way_delivers_every_event_exactly_once() {
    let pool = log().await;
    let mut conn = pool.acquire().await.expect("connection");
    for n in 0..1200 {
        append(&mut conn, &format!("e{n:04}"), 1).await;
    }
    drop(conn);
    settle(&pool).await;

    let first = catch_up_once(&pool, &Recorder).await.expect("one batch");
    assert_eq!((first.applied, first.idle), (500, false));

    // A failure in the next batch rolls the whole batch back, checkpoint included.
    let failing = FailsOnceAt("e0700", AtomicBool::new(false));
    assert!(catch_up_once(&pool, &failing).await.is_err());
    assert_eq!(delivered(&pool).await.len(), 500);

    // A new runner (as after a restart) resumes from the checkpoint.
    catch_up_fully(&pool, &failing).await;
    let all = delivered(&pool).await;
    let expected: Vec<String> = (0..1200).map(|n| format!("e{n:04}")).collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn waiting_for_a_position_returns_once_the_view_has_it() {
    let pool = log().await;
    let projections = Projections::new(pool.clone(), vec![Arc::new(Recorder)]);
    let tasks = projections.start();
    let mut conn = pool.acquire().await.expect("connection");
    append(&mut conn, "waited for", 1).await;
    let (tx, pos): (String, i64) = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM events WHERE aggregate_id = 'waited for'",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("position");
    let target = Cursor {
        transaction_id: tx.parse().expect("xid"),
        global_position: pos,
    };
    assert!(projections.wait_for(target, Duration::from_secs(10)).await);
    assert_eq!(delivered(&pool).await, vec!["waited for"]);
    let later = Cursor {
        transaction_id: u64::MAX,
        global_position: 0,
    };
    assert!(
        !projections
            .wait_for(later, Duration::from_millis(100))
            .await
    );
    for task in tasks {
        task.abort();
    }
}

/// Committed `(aggregate id, sequence)` pairs of racing writers.
pub type Committed = Arc<Mutex<HashSet<(String, i64)>>>;

/// `writers` tasks each commit `transactions` transactions of one to three `test.happened`
/// events; about 30% take their transaction id early and commit late, 20% roll back.
pub fn spawn_racing_writers(
    pool: &PgPool,
    writers: usize,
    transactions: usize,
) -> (Vec<tokio::task::JoinHandle<()>>, Committed) {
    let committed: Committed = Arc::default();
    let handles = (0..writers)
        .map(|w| {
            let pool = pool.clone();
            let committed = committed.clone();
            tokio::spawn(async move {
                for t in 0..transactions {
                    let id = format!("w{w}-t{t}");
                    let (early, count, pause, roll_back) = {
                        let mut rng = rand::thread_rng();
                        (
                            rng.gen_bool(0.3),
                            rng.gen_range(1..=3),
                            rng.gen_range(0..4),
                            rng.gen_bool(0.2),
                        )
                    };
                    let mut tx = pool.begin().await.expect("tx");
                    if early {
                        sqlx::query("SELECT pg_current_xact_id()")
                            .execute(&mut *tx)
                            .await
                            .expect("xid");
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    for sequence in 1..=count {
                        append(&mut tx, &id, sequence).await;
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    if roll_back {
                        tx.rollback().await.expect("rollback");
                    } else {
                        tx.commit().await.expect("commit");
                        let mut set = committed.lock().expect("lock");
                        for sequence in 1..=count {
                            set.insert((id.clone(), sequence));
                        }
                    }
                }
            })
        })
        .collect();
    (handles, committed)
}

#[tokio::test]
async fn concurrent_writers_rollbacks_and_a_restart_end_with_every_commit_once() {
    let pool = log().await;
    let (writers, committed) = spawn_racing_writers(&pool, 4, 40);

    // A projector runs alongside and is killed mid-way, then started again.
    let spawn_projector = |pool: PgPool| {
        tokio::spawn(async move {
            loop {
                let _ = catch_up_once(&pool, &Recorder).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let first = spawn_projector(pool.clone());
    tokio::time::sleep(Duration::from_millis(150)).await;
    first.abort();
    let _ = first.await;
    let second = spawn_projector(pool.clone());
    for writer in writers {
        writer.await.expect("writer");
    }
    second.abort();
    let _ = second.await;
    catch_up_fully(&pool, &Recorder).await;

    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT aggregate_id, sequence FROM test_deliveries ORDER BY delivery")
            .fetch_all(&pool)
            .await
            .expect("deliveries");
    let delivered: HashSet<(String, i64)> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), delivered.len(), "no duplicates");
    assert_eq!(
        delivered,
        *committed.lock().expect("lock"),
        "projected = committed"
    );

    // And delivery order is commit order.
    let order: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, sequence FROM events ORDER BY transaction_id, global_position",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    assert_eq!(rows, order);
}

/// Always fails: stands for a projector meeting an event it cannot apply.
struct Broken;

#[async_trait]
impl Projector for Broken {
    fn name(&self) -> &'static str {
        "test_broken"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_deliveries"]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["test.happened"]
    }

    async fn apply(&self, _: &mut PgConnection, _: &StoredEvent) -> Result<(), ProjectionError> {
        Err(ProjectionError::Database(sqlx::Error::Protocol(
            "cannot apply".into(),
        )))
    }
}

#[tokio::test]
async fn a_failing_projector_is_reported_and_retried_not_skipped() {
    let pool = log().await;
    append_committed(&pool, "poison").await;
    settle(&pool).await;
    let projections = Projections::new(pool.clone(), vec![Arc::new(Broken)]);
    let tasks = projections.start();
    let mut failures = 0;
    for _ in 0..500 {
        let status = &projections.statuses()[0];
        if status.failing && status.failures >= 2 {
            failures = status.failures;
            assert!(status
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("cannot apply"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(failures >= 2, "the failure is retried and counted");
    let (checkpoint, error): (i64, Option<String>) = sqlx::query_as(
        "SELECT global_position, last_error FROM projector_checkpoints WHERE name = 'test_broken'",
    )
    .fetch_one(&pool)
    .await
    .expect("checkpoint");
    assert_eq!(checkpoint, 0, "the event was not skipped");
    assert!(error.is_some_and(|e| e.contains("cannot apply")));
    for task in tasks {
        task.abort();
    }
}

/// Transaction ids are compared as numbers: 9 before 10, although "10" < "9" as text. (Ids this
/// small are below any live horizon, so a stand-in log with chosen ids can show it.)
#[tokio::test]
async fn commit_order_compares_transaction_ids_as_numbers_not_text() {
    let pool = log().await;
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::query("CREATE SCHEMA chosen_ids")
        .execute(&mut *conn)
        .await
        .expect("schema");
    sqlx::query("CREATE TABLE chosen_ids.events (LIKE public.events INCLUDING DEFAULTS)")
        .execute(&mut *conn)
        .await
        .expect("table");
    sqlx::query(
        "INSERT INTO chosen_ids.events (aggregate_type, aggregate_id, sequence, event_type,
                                        event_version, payload, metadata, transaction_id,
                                        global_position)
         VALUES ('test', 'second', 1, 'test.happened', '1.0', '{}', '{}', '10', 1),
                ('test', 'first', 1, 'test.happened', '1.0', '{}', '{}', '9', 2),
                ('test', 'third', 1, 'test.happened', '1.0', '{}', '{}', '100', 3)",
    )
    .execute(&mut *conn)
    .await
    .expect("events");
    sqlx::query("SET search_path = chosen_ids, public")
        .execute(&mut *conn)
        .await
        .expect("search path");

    let read = events_after(&mut conn, Cursor::default(), None, 2)
        .await
        .expect("read");
    let ids: Vec<&str> = read.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(ids, ["first", "second"]);
    let rest = events_after(&mut conn, read[1].cursor, None, 10)
        .await
        .expect("read");
    let ids: Vec<&str> = rest.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(ids, ["third"]);
}

/// The views share one reader; one that cannot apply its events is left to retry alone while the
/// others go on, each event reaching them once.
#[tokio::test]
async fn a_failing_projector_does_not_hold_back_the_others_on_the_shared_reader() {
    let pool = log().await;
    let projections = Projections::new(pool.clone(), vec![Arc::new(Broken), Arc::new(Recorder)]);
    let tasks = projections.start();
    for id in ["first", "second"] {
        append_committed(&pool, id).await;
    }
    let until = |count: usize| {
        let pool = pool.clone();
        async move {
            for _ in 0..1000 {
                if delivered(&pool).await.len() >= count {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    until(2).await;
    // Still failing, and the others still go on.
    append_committed(&pool, "third").await;
    until(3).await;
    assert_eq!(delivered(&pool).await, vec!["first", "second", "third"]);
    let statuses = projections.statuses();
    let broken = statuses.iter().find(|s| s.name == "test_broken");
    assert!(broken.is_some_and(|s| s.failing && s.failures >= 1));
    let recorder = statuses.iter().find(|s| s.name == "test_recorder");
    assert!(recorder.is_some_and(|s| !s.failing && s.applied == 3 && s.shared_reader));
    let broken_at: i64 = sqlx::query_scalar(
        "SELECT global_position FROM projector_checkpoints WHERE name = 'test_broken'",
    )
    .fetch_one(&pool)
    .await
    .expect("checkpoint");
    assert_eq!(broken_at, 0, "the failing view skipped nothing");
    for task in tasks {
        task.abort();
    }
}

/// Like `Recorder`, into a table of its own.
struct SecondRecorder;

#[async_trait]
impl Projector for SecondRecorder {
    fn name(&self) -> &'static str {
        "test_second_recorder"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_second_deliveries"]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["test.happened"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        record(conn, "test_second_deliveries", event).await
    }
}

#[tokio::test]
async fn the_shared_reader_delivers_every_commit_once_in_commit_order_across_a_restart() {
    let pool = log().await;
    sqlx::query("CREATE TABLE test_second_deliveries (LIKE test_deliveries INCLUDING ALL)")
        .execute(&pool)
        .await
        .expect("second table");
    let views =
        || -> Vec<Arc<dyn Projector>> { vec![Arc::new(Recorder), Arc::new(SecondRecorder)] };
    let (writers, committed) = spawn_racing_writers(&pool, 4, 40);
    let first = Projections::new(pool.clone(), views());
    let tasks = first.start();
    tokio::time::sleep(Duration::from_millis(150)).await;
    for task in tasks {
        task.abort();
    }
    let second = Projections::new(pool.clone(), views());
    let tasks = second.start();
    for writer in writers {
        writer.await.expect("writer");
    }
    settle(&pool).await;
    assert!(
        second
            .wait_for(head(&pool).await, Duration::from_secs(20))
            .await
    );
    for task in tasks {
        task.abort();
    }

    let order: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, sequence FROM events ORDER BY transaction_id, global_position",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    let expected: HashSet<(String, i64)> = order.iter().cloned().collect();
    assert_eq!(expected, *committed.lock().expect("lock"));
    for table in ["test_deliveries", "test_second_deliveries"] {
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT aggregate_id, sequence FROM {table} ORDER BY delivery"
        ))
        .fetch_all(&pool)
        .await
        .expect("deliveries");
        assert_eq!(rows, order, "{table}: every commit once, in commit order");
    }
}

/// Far behind the head the views catch up on their own readers, then share one again: every
/// event once, in commit order, before and after the switch.
#[tokio::test]
async fn views_far_behind_catch_up_alone_and_then_share_the_reader_again() {
    let pool = log().await;
    sqlx::query("CREATE TABLE test_second_deliveries (LIKE test_deliveries INCLUDING ALL)")
        .execute(&pool)
        .await
        .expect("second table");
    let mut conn = pool.acquire().await.expect("connection");
    // More than three full passes of the shared reader (1,000 events each) behind.
    for n in 0..4500 {
        append(&mut conn, &format!("e{n:04}"), 1).await;
    }
    let views: Vec<Arc<dyn Projector>> = vec![Arc::new(Recorder), Arc::new(SecondRecorder)];
    let projections = Projections::new(pool.clone(), views);
    let tasks = projections.start();
    settle(&pool).await;
    assert!(
        projections
            .wait_for(head(&pool).await, Duration::from_secs(30))
            .await
    );
    let sharing = || projections.statuses().iter().all(|s| s.shared_reader);
    for _ in 0..500 {
        if sharing() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sharing(), "back on the shared reader once caught up");
    // Later events still reach both views.
    for n in 4500..4510 {
        append(&mut conn, &format!("e{n:04}"), 1).await;
    }
    settle(&pool).await;
    assert!(
        projections
            .wait_for(head(&pool).await, Duration::from_secs(10))
            .await
    );
    for task in tasks {
        task.abort();
    }
    let expected: Vec<String> = (0..4510).map(|n| format!("e{n:04}")).collect();
    assert_eq!(delivered(&pool).await, expected);
    let second: Vec<String> =
        sqlx::query_scalar("SELECT aggregate_id FROM test_second_deliveries ORDER BY delivery")
            .fetch_all(&pool)
            .await
            .expect("second deliveries");
    assert_eq!(second, expected);
}

/// Reacts to a type nothing in these tests appends.
struct RareReactor;

#[async_trait]
impl Reactor for RareReactor {
    fn name(&self) -> &'static str {
        "test_rare_reactor"
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["test.rare"]
    }

    async fn react(&self, _event: &StoredEvent) -> Result<(), ProjectionError> {
        Ok(())
    }
}

async fn checkpoint_of(pool: &PgPool, name: &str) -> Cursor {
    let (transaction_id, global_position): (String, i64) = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM projector_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_one(pool)
    .await
    .expect("checkpoint");
    Cursor {
        transaction_id: transaction_id.parse().expect("xid8"),
        global_position,
    }
}

#[tokio::test]
async fn a_reactor_whose_types_are_rare_keeps_its_checkpoint_at_the_horizon_not_at_its_last_event()
{
    let pool = log().await;
    for n in 0..5 {
        append_committed(&pool, &format!("common-{n}")).await;
    }
    settle(&pool).await;
    let batch = react_once(&pool, &RareReactor).await.expect("a pass");
    assert_eq!(batch.applied, 0);
    // The next pass starts past every event already read, not at the start of the log: a rare
    // type's reactor would otherwise scan the whole log on every poll.
    assert!(
        checkpoint_of(&pool, "test_rare_reactor").await > head(&pool).await,
        "the persisted checkpoint is past the head"
    );
}

/// A view of a type nothing in these tests appends.
struct RareView;

#[async_trait]
impl Projector for RareView {
    fn name(&self) -> &'static str {
        "test_rare_view"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_deliveries"]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["test.rare"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        record(conn, "test_deliveries", event).await
    }
}

#[tokio::test]
async fn a_view_whose_types_are_rare_keeps_its_checkpoint_at_the_horizon_on_its_own_reader() {
    let pool = log().await;
    for n in 0..5 {
        append_committed(&pool, &format!("common-{n}")).await;
    }
    settle(&pool).await;
    let batch = catch_up_once(&pool, &RareView).await.expect("a pass");
    assert_eq!(batch.applied, 0);
    assert!(batch.idle);
    assert!(
        checkpoint_of(&pool, "test_rare_view").await > head(&pool).await,
        "the persisted checkpoint is past the head, as the pass reported"
    );
    assert!(delivered(&pool).await.is_empty());
}
