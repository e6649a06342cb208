//! The write side against PostgreSQL: snapshots equal a pure replay, and optimistic concurrency
//! keeps every rule under concurrent commands.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use warden::adapters::clock::ManualClock;
use warden::adapters::sealing::MasterKey;
use warden::adapters::store::EventStore;
use warden::adapters::totp::RfcTotp;
use warden::startup::migrate;
use warden_aggregates::account::{
    Account, AccountCommand, AccountServices, AuthMethod, NewSession, PasswordVerifier,
    SecurityPolicy, SessionCommand, SessionEndReason,
};
use warden_aggregates::shared::{AccountId, PasswordHash, SealedText, SessionId, TokenHash};
use warden_projections::replay::{replay, ReplayError};
use warden_projections::{catch_up, ProjectionError, Projector, StoredEvent};

use crate::helpers::{
    assert_problem, count, fresh_database, reset_token_in, spawn_app, statuses_of,
};

struct PlainPasswords;

#[async_trait]
impl PasswordVerifier for PlainPasswords {
    async fn verify(&self, hash: &PasswordHash, candidate: &SecretString) -> bool {
        hash.0 == format!("plain:{}", candidate.expose_secret())
    }
}

async fn store() -> (EventStore, PgPool) {
    let url = fresh_database().await;
    let pool = PgPool::connect(&url).await.expect("pool");
    migrate(&pool).await.expect("migrated");
    (EventStore::new(pool.clone()), pool)
}

fn services() -> AccountServices {
    AccountServices {
        clock: Arc::new(ManualClock::default()),
        passwords: Arc::new(PlainPasswords),
        totp: Arc::new(RfcTotp::new(Arc::new(MasterKey::generate()))),
        policy: SecurityPolicy::default(),
    }
}

fn log_in(password: &str) -> AccountCommand {
    AccountCommand::from(SessionCommand::LogIn {
        password: SecretString::from(password.to_string()),
        session: NewSession {
            session_id: SessionId(Uuid::now_v7()),
            token_hash: TokenHash(Uuid::new_v4().to_string()),
            device: None,
            method: AuthMethod::Password,
            sso: None,
            device_hash: None,
        },
        challenge_hash: TokenHash(Uuid::new_v4().to_string()),
        mfa_required_by: vec![],
    })
}

/// An account with about `events` events of every kind a session life produces.
async fn busy_account(store: &EventStore, events: usize) -> String {
    let services = services();
    let metadata = HashMap::new();
    let id = AccountId(Uuid::now_v7());
    let key = id.to_string();
    store
        .execute::<Account>(
            &key,
            || AccountCommand::Register {
                account_id: id,
                email: SealedText("sealed".into()),
                display_name: None,
                password_hash: PasswordHash("plain:right".into()),
            },
            &services,
            &metadata,
        )
        .await
        .expect("registered");
    let mut written = 1;
    let mut round = 0;
    while written < events {
        round += 1;
        let (_, sequence) = store.load::<Account>(&key).await.expect("load");
        // Built again if it is decided again (a no-op on remembered state is confirmed on the
        // committed one).
        let command = || {
            if round % 5 == 0 {
                log_in("wrong")
            } else if round % 2 == 0 {
                log_in("right")
            } else {
                AccountCommand::from(SessionCommand::EndAll {
                    reason: SessionEndReason::RevokedAll,
                })
            }
        };
        store
            .execute::<Account>(&key, command, &services, &metadata)
            .await
            .expect("executed");
        let (_, after) = store.load::<Account>(&key).await.expect("load");
        written += after - sequence;
    }
    key
}

/// A view that refuses the event at `position` and records every other one it is given.
struct Refusing {
    position: i64,
}

#[async_trait]
impl Projector for Refusing {
    fn name(&self) -> &'static str {
        "refusing_v1"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &[]
    }
    fn reads_every_event(&self) -> bool {
        true
    }
    fn tables(&self) -> &'static [&'static str] {
        &["refusing_v1"]
    }
    async fn apply(
        &self,
        conn: &mut sqlx::PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.cursor.global_position == self.position {
            return Err(ProjectionError::Decode {
                cursor: event.cursor,
                event_type: event.event_type.clone(),
                source: serde::de::Error::custom("refused on purpose"),
            });
        }
        sqlx::query("INSERT INTO refusing_v1 VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(event.cursor.global_position)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// A replay reads the log in batches of a thousand and every view applies them on its own
/// connection: across several batches each view comes out identical to the live one, and a view
/// that fails stops the replay with its error instead of leaving it waiting.
#[tokio::test]
async fn a_replay_across_many_batches_is_identical_and_a_failing_view_stops_it() {
    let url = fresh_database().await;
    let pool = PgPool::connect(&url).await.expect("pool");
    migrate(&pool).await.expect("migrated");
    let store = EventStore::new(pool.clone());
    busy_account(&store, 2_600).await;
    let projectors = warden_projections::all(None);
    for projector in &projectors {
        catch_up(&pool, projector.as_ref())
            .await
            .expect("live view");
    }
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("url");
    let report = replay(&pool, options.clone(), &projectors)
        .await
        .expect("replayed");
    assert!(report.identical, "{report:?}");
    let audit = report
        .tables
        .iter()
        .find(|t| t.table == "audit_log_v1")
        .expect("the audit log compared");
    assert!(audit.rebuilt_rows >= 2_600, "{audit:?}");

    sqlx::query("CREATE TABLE refusing_v1 (global_position bigint PRIMARY KEY)")
        .execute(&pool)
        .await
        .expect("table");
    let mut with_refusing = projectors.clone();
    with_refusing.push(Arc::new(Refusing { position: 1_700 }));
    let failed = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        replay(&pool, options, &with_refusing),
    )
    .await
    .expect("the replay ends");
    match failed {
        Err(ReplayError::Projection(ProjectionError::Decode { cursor, .. })) => {
            assert_eq!(cursor.global_position, 1_700)
        }
        other => panic!("the refusing view's error, not {other:?}"),
    }
}

#[tokio::test]
async fn a_snapshot_load_equals_a_pure_replay_after_a_thousand_events() {
    let (store, pool) = store().await;
    let key = busy_account(&store, 1000).await;

    // A store of its own, as a process that has not seen this account: it loads through the
    // snapshot, not through the states the writing store keeps in memory.
    let store = EventStore::new(pool.clone());
    let (through_snapshot, seq_a) = store.load::<Account>(&key).await.expect("load");
    let (replayed, seq_b) = store.replay::<Account>(&key).await.expect("replay");
    assert!(seq_a >= 1000);
    assert_eq!(seq_a, seq_b);
    assert_eq!(through_snapshot, replayed);

    // The snapshot path really was taken: a recent snapshot exists, few events lie beyond it.
    // Snapshots are written off the request path, so the newest may still be on its way.
    let mut last: i64 = 0;
    for _ in 0..40 {
        last = sqlx::query_scalar(
            "SELECT last_sequence FROM aggregate_snapshots WHERE aggregate_id = $1",
        )
        .bind(&key)
        .fetch_one(&pool)
        .await
        .expect("a snapshot");
        if (seq_a as i64) - last < 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        seq_a as i64 - last < 50,
        "snapshot at {last}, head at {seq_a}"
    );

    // A snapshot of an older shape is ignored, and the state is the same.
    sqlx::query("UPDATE aggregate_snapshots SET schema_version = 0, payload = '{}'")
        .execute(&pool)
        .await
        .expect("update");
    let (ignored_snapshot, _) = EventStore::new(pool.clone())
        .load::<Account>(&key)
        .await
        .expect("load");
    assert_eq!(ignored_snapshot, replayed);
}

#[tokio::test]
async fn a_snapshot_is_never_replaced_by_an_older_one() {
    let (store, pool) = store().await;
    let key = busy_account(&store, 120).await;
    let (state, sequence) = store.load::<Account>(&key).await.expect("load");
    store
        .write_snapshot(&key, &Account::default(), 10)
        .await
        .expect("write");
    let last: i64 = sqlx::query_scalar("SELECT last_sequence FROM aggregate_snapshots")
        .fetch_one(&pool)
        .await
        .expect("snapshot");
    assert!(last >= 100, "kept the newer snapshot, at {last}");
    let (again, again_seq) = EventStore::new(pool.clone())
        .load::<Account>(&key)
        .await
        .expect("load");
    assert_eq!((again, again_seq), (state, sequence));
}

/// A process keeps the accounts it wrote in memory, and is never misled by them: what another
/// process appended since is read before anything is decided.
#[tokio::test]
async fn a_remembered_account_sees_what_another_process_appended() {
    let (one, pool) = store().await;
    let key = busy_account(&one, 20).await;
    let (remembered, before) = one.load::<Account>(&key).await.expect("load");
    let two = EventStore::new(pool.clone());
    let services = services();
    for _ in 0..3 {
        two.execute::<Account>(&key, || log_in("wrong"), &services, &HashMap::new())
            .await
            .expect("appended elsewhere");
    }
    let (seen, after) = one.load::<Account>(&key).await.expect("load");
    let (replayed, head) = one.replay::<Account>(&key).await.expect("replay");
    assert_eq!(after, before + 3);
    assert_eq!((seen.clone(), after), (replayed, head));
    assert_ne!(
        seen, remembered,
        "the failures another process recorded count"
    );
}

#[tokio::test]
async fn concurrent_wrong_passwords_are_each_counted_once() {
    let app = spawn_app().await;
    app.register("many@example.com").await;
    let attempts = (0..10).map(|_| app.log_in_with("many@example.com", "wrong password"));
    for response in futures_util::future::join_all(attempts).await {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let counts: Vec<i64> = sqlx::query_scalar(
        "SELECT (payload -> 'PasswordCheckFailed' ->> 'consecutive_failures')::bigint
         FROM events WHERE event_type = 'account.password.check_failed' ORDER BY sequence",
    )
    .fetch_all(&app.pool)
    .await
    .expect("failures");
    assert_eq!(counts, (1..=10).collect::<Vec<i64>>());
    let locked = app
        .log_in_with("many@example.com", crate::helpers::PASSWORD)
        .await;
    assert_problem(locked, StatusCode::LOCKED, "account_locked").await;
}

#[tokio::test]
async fn a_reset_token_works_once_under_concurrency() {
    let app = spawn_app().await;
    app.register("once@example.com").await;
    app.post(
        "/v1/password-resets",
        json!({ "email": "once@example.com" }),
        None,
    )
    .await;
    let token = reset_token_in(&app.reset_mails().await[0]);
    let attempts = (0..6).map(|i| {
        app.post(
            "/v1/password-resets/confirm",
            json!({ "token": token, "new_password": format!("racing passphrase number {i}") }),
            None,
        )
    });
    let statuses = statuses_of(attempts).await;
    let accepted = count(&statuses, StatusCode::NO_CONTENT);
    let refused = count(&statuses, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((accepted, refused), (1, 5), "{statuses:?}");
}

/// Counts the passwords it is asked to check.
struct CountingPasswords(std::sync::atomic::AtomicUsize);

#[async_trait]
impl PasswordVerifier for CountingPasswords {
    async fn verify(&self, hash: &PasswordHash, candidate: &SecretString) -> bool {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        PlainPasswords.verify(hash, candidate).await
    }
}

/// A command decided on the state this process remembers is appended at once; when another
/// process wrote in between, the append is refused, the command is decided again on the state as
/// committed, and the password is not checked a second time.
#[tokio::test]
async fn a_command_on_stale_remembered_state_is_decided_again_without_a_second_password_check() {
    let (one, pool) = store().await;
    let key = busy_account(&one, 20).await;
    let two = EventStore::new(pool.clone());
    two.execute::<Account>(&key, || log_in("wrong"), &services(), &HashMap::new())
        .await
        .expect("appended elsewhere");
    let counting = Arc::new(CountingPasswords(Default::default()));
    let services = AccountServices {
        passwords: counting.clone(),
        ..services()
    };
    let committed = one
        .execute::<Account>(&key, || log_in("right"), &services, &HashMap::new())
        .await
        .expect("logged in");
    assert!(committed.events.iter().any(|e| matches!(
        e,
        warden_aggregates::account::AccountEvent::SessionStarted { .. }
    )));
    assert_eq!(
        counting.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "Argon2 once"
    );
    let (state, sequence) = one.load::<Account>(&key).await.expect("load");
    let (replayed, head) = one.replay::<Account>(&key).await.expect("replay");
    assert_eq!((state, sequence), (replayed, head));
    // The failure recorded elsewhere was seen before the login decided: the streak it started
    // was reset by this login, not lost.
    let failures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1
           AND event_type = 'account.password.check_failed'",
    )
    .bind(&key)
    .fetch_one(&pool)
    .await
    .expect("failures");
    assert!(failures >= 1);
}

/// The notifications on `warden_events` that arrive within `window`.
async fn notifications(
    listener: &mut sqlx::postgres::PgListener,
    window: std::time::Duration,
) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Ok(notification)) = tokio::time::timeout_at(deadline, listener.recv()).await {
        seen.push(notification.payload().to_owned());
    }
    seen
}

#[tokio::test]
async fn the_store_announces_each_commit_once_after_it_and_other_writers_are_still_announced() {
    let url = fresh_database().await;
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("url");
    let pool = PgPool::connect_with(options.application_name("warden-announcing"))
        .await
        .expect("pool");
    migrate(&pool).await.expect("migrated");
    let store = EventStore::new(pool.clone());
    let mut listener = sqlx::postgres::PgListener::connect(&url)
        .await
        .expect("listener");
    listener.listen("warden_events").await.expect("listening");

    let key = busy_account(&store, 1).await;
    let seen = notifications(&mut listener, std::time::Duration::from_millis(1500)).await;
    // One notification, the announcer's: the trigger kept quiet for the store's own append.
    assert_eq!(
        seen,
        vec!["warden-announcing\naccount.registered".to_owned()]
    );

    // Any other writer of the log is announced by the trigger, as before.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('account', $1, 2, 'account.display_name.changed', '1', '{}', '{}')",
    )
    .bind(&key)
    .execute(&PgPool::connect(&url).await.expect("another writer"))
    .await
    .expect("appended by another writer");
    let seen = notifications(&mut listener, std::time::Duration::from_millis(1500)).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].ends_with("\naccount.display_name.changed"),
        "{seen:?}"
    );
}
