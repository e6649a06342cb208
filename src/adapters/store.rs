//! The write side's store: postgres-es's event repository reads the events; the append is one
//! statement of our own on the same table; snapshots are our own too.
//!
//! cqrs-es 0.5's snapshot store applies each new event twice and postgres-es can report a
//! conflict after its snapshot transaction committed, so neither is used. Here a command is
//! handled against the aggregate loaded once (snapshot + later events, each applied once), its
//! events are appended in one transaction whose unique `(type, id, sequence)` key decides races,
//! and a snapshot is written afterwards as a cache that may lag but is never wrong.

use std::collections::HashMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use warden_aggregates::account::AccountServices;
use warden_projections::Cursor;

use crate::adapters::announcer::Announcer;
use crate::adapters::password::VerifiedOnce;

/// Take a new snapshot once this many events have been written since the last one.
const SNAPSHOT_EVERY: usize = 50;
/// How many times a command is re-run against fresh state after losing a race: enough for a
/// few dozen writers on one account at once (each round, one of them wins).
const MAX_ATTEMPTS: usize = 32;

/// An aggregate whose state may be cached as a snapshot. Bump `SNAPSHOT_VERSION` whenever the
/// serialized shape changes; older snapshots are then ignored and rebuilt from events.
pub trait Snapshotted: Aggregate + Clone + 'static {
    const SNAPSHOT_VERSION: i32;

    /// The services for one command and its retries, when they should differ from the shared
    /// ones (an account's passwords are verified once per command).
    fn for_one_command(_services: &Self::Services) -> Option<Self::Services> {
        None
    }
}

impl Snapshotted for warden_aggregates::account::Account {
    // 2: live sessions remember how they were authenticated.
    // 3: a pending password reset remembers when it was asked for.
    // 4: the state is one slice per part of the account.
    // 5: a live session remembers until when the PIN unlocked it.
    // 6: linked identities; a live session remembers its identity provider.
    // 7: security notices.
    // 8: passkeys, and a challenge's passkey ceremony.
    const SNAPSHOT_VERSION: i32 = 9;

    fn for_one_command(services: &AccountServices) -> Option<AccountServices> {
        Some(AccountServices {
            clock: services.clock.clone(),
            passwords: std::sync::Arc::new(VerifiedOnce::new(services.passwords.clone())),
            totp: services.totp.clone(),
            policy: services.policy.clone(),
        })
    }
}

impl Snapshotted for warden_aggregates::identity_provider::IdentityProvider {
    const SNAPSHOT_VERSION: i32 = 1;
}

impl Snapshotted for warden_aggregates::workspace::Workspace {
    // 2: the MFA policy remembers when it was turned on.
    const SNAPSHOT_VERSION: i32 = 2;
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event store: {0}")]
    Persistence(#[from] PersistenceError),
    #[error("stored event cannot be decoded: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the aggregate kept changing under the command ({0} attempts)")]
    Contended(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E: std::error::Error> {
    #[error(transparent)]
    Domain(E),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a command committed.
pub struct Committed<A: Aggregate> {
    pub events: Vec<A::Event>,
    pub state: A,
    /// Where the last event landed in commit order; `None` when the command wrote nothing.
    pub position: Option<Cursor>,
}

#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    repo: std::sync::Arc<PostgresEventRepository>,
    /// Aggregates as this process last saw them, with their sequence and snapshot sequence. Never
    /// trusted as current: a load reads the events after the cached sequence, and an append
    /// decided on a state that was not current is refused by the sequence key.
    recent: moka::sync::Cache<String, std::sync::Arc<dyn std::any::Any + Send + Sync>>,
    announcer: Announcer,
}

/// Aggregates kept in memory per process (a few KiB each).
const RECENT_AGGREGATES: u64 = 10_000;

impl EventStore {
    pub fn new(pool: PgPool) -> Self {
        let repo = std::sync::Arc::new(PostgresEventRepository::new(pool.clone()));
        let recent = moka::sync::Cache::new(RECENT_AGGREGATES);
        let announcer = Announcer::new(pool.clone());
        Self {
            pool,
            repo,
            recent,
            announcer,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn recent_key<A: Snapshotted>(id: &str) -> String {
        format!("{}:{id}", A::TYPE)
    }

    /// The state this process last saw, if it has one.
    fn recent<A: Snapshotted>(&self, id: &str) -> Option<(A, usize, usize)> {
        let entry = self.recent.get(&Self::recent_key::<A>(id))?;
        entry.downcast_ref::<(A, usize, usize)>().cloned()
    }

    /// The aggregate as of its latest event, through the snapshot.
    pub async fn load<A: Snapshotted>(&self, id: &str) -> Result<(A, usize), StoreError> {
        let loaded = self.load_with_snapshot::<A>(id).await?;
        Ok((loaded.0, loaded.1))
    }

    /// The aggregate, its sequence and the sequence its snapshot was taken at.
    async fn load_with_snapshot<A: Snapshotted>(
        &self,
        id: &str,
    ) -> Result<(A, usize, usize), StoreError> {
        if let Some((mut aggregate, mut sequence, snapshot_sequence)) = self.recent::<A>(id) {
            // One read: whatever was appended since, here or by another process.
            for event in self.repo.get_last_events::<A>(id, sequence).await? {
                sequence = event.sequence;
                aggregate.apply(serde_json::from_value(event.payload)?);
            }
            return Ok((aggregate, sequence, snapshot_sequence));
        }
        let snapshot: Option<(serde_json::Value, i64)> = sqlx::query_as(
            "SELECT payload, last_sequence FROM aggregate_snapshots
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND schema_version = $3",
        )
        .bind(A::TYPE)
        .bind(id)
        .bind(A::SNAPSHOT_VERSION)
        .fetch_optional(&self.pool)
        .await?;
        let (mut aggregate, mut sequence) = match snapshot {
            Some((payload, last)) => match serde_json::from_value::<A>(payload) {
                Ok(state) => (state, last as usize),
                Err(error) => {
                    tracing::warn!(%error, aggregate = A::TYPE, "snapshot unreadable; replaying");
                    (A::default(), 0)
                }
            },
            None => (A::default(), 0),
        };
        let events = if sequence == 0 {
            self.repo.get_events::<A>(id).await?
        } else {
            self.repo.get_last_events::<A>(id, sequence).await?
        };
        let snapshot_sequence = sequence;
        for event in events {
            sequence = event.sequence;
            aggregate.apply(serde_json::from_value(event.payload)?);
        }
        Ok((aggregate, sequence, snapshot_sequence))
    }

    /// The aggregate rebuilt from every one of its events, ignoring snapshots.
    pub async fn replay<A: Aggregate>(&self, id: &str) -> Result<(A, usize), StoreError> {
        let mut aggregate = A::default();
        let mut sequence = 0;
        for event in self.repo.get_events::<A>(id).await? {
            sequence = event.sequence;
            aggregate.apply(serde_json::from_value(event.payload)?);
        }
        Ok((aggregate, sequence))
    }

    /// Handles the command built by `command` and appends its events. On an aggregate this
    /// process remembers, the command is decided on that state and appended at once (one round
    /// trip): the sequence key refuses the append if anything was written since, and a refusal
    /// or a no-op decided on remembered state is decided again on the state as committed. If
    /// another writer got there first, the command is built and handled again against the new
    /// state, so every rule is checked against what was really committed.
    pub async fn execute<A: Snapshotted>(
        &self,
        id: &str,
        command: impl Fn() -> A::Command,
        services: &A::Services,
        metadata: &HashMap<String, String>,
    ) -> Result<Committed<A>, ExecuteError<A::Error>> {
        let once = A::for_one_command(services);
        let services = once.as_ref().unwrap_or(services);
        let mut remembered = self.recent::<A>(id);
        let mut lost = 0;
        while lost < MAX_ATTEMPTS {
            let unconfirmed = remembered.is_some();
            let (mut aggregate, sequence, snapshot_sequence) = match remembered.take() {
                Some(state) => state,
                None => self.load_with_snapshot::<A>(id).await?,
            };
            let sink = EventSink::default();
            let handled = aggregate.handle(command(), services, &sink).await;
            let events = sink.collect().await;
            if unconfirmed && (handled.is_err() || events.is_empty()) {
                // Decided on what this process remembered: decide again on what is committed.
                continue;
            }
            handled.map_err(ExecuteError::Domain)?;
            if events.is_empty() {
                return Ok(Committed {
                    events,
                    state: aggregate,
                    position: None,
                });
            }
            let serialized = serialize::<A>(id, sequence, &events, metadata)?;
            let Some(position) = self.append(&serialized).await? else {
                if !unconfirmed {
                    lost += 1;
                    back_off(lost).await;
                }
                continue;
            };
            let last = sequence + events.len();
            let snapshot_at = self.snapshot_if_due(id, &aggregate, last, snapshot_sequence);
            let recent = (aggregate.clone(), last, snapshot_at);
            self.recent
                .insert(Self::recent_key::<A>(id), std::sync::Arc::new(recent));
            return Ok(Committed {
                events,
                state: aggregate,
                position: Some(position),
            });
        }
        Err(StoreError::Contended(MAX_ATTEMPTS).into())
    }

    /// Writes a snapshot off the request path when enough events have passed since the last one;
    /// the sequence the newest snapshot is at. A failed snapshot costs only speed: the next load
    /// replays a few more events.
    fn snapshot_if_due<A: Snapshotted>(
        &self,
        id: &str,
        aggregate: &A,
        last: usize,
        snapshot_sequence: usize,
    ) -> usize {
        if last < snapshot_sequence + SNAPSHOT_EVERY {
            return snapshot_sequence;
        }
        let store = self.clone();
        let (id, state) = (id.to_owned(), aggregate.clone());
        tokio::spawn(async move {
            if let Err(error) = store.write_snapshot(&id, &state, last).await {
                tracing::warn!(%error, aggregate = A::TYPE, "snapshot not written");
            }
        });
        last
    }

    /// Position of the newest event in commit order.
    pub async fn head(&self) -> Result<Option<Cursor>, StoreError> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT transaction_id::text, global_position FROM events
             ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(tx, pos)| {
            Some(Cursor {
                transaction_id: tx.parse().ok()?,
                global_position: pos,
            })
        }))
    }

    /// Appends one command's events in one statement (one round trip, its own transaction) and
    /// answers where the last one landed in commit order; `None` when another writer took one
    /// of their sequence numbers first (the unique `(type, id, sequence)` key). postgres-es's
    /// `persist` costs a BEGIN, an INSERT per event and a COMMIT, and the position a read more
    /// (docs/adr/0014).
    async fn append(&self, events: &[SerializedEvent]) -> Result<Option<Cursor>, StoreError> {
        let column = |f: fn(&SerializedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
        let sequences: Vec<i64> = events.iter().map(|e| e.sequence as i64).collect();
        let payloads: Vec<serde_json::Value> = events.iter().map(|e| e.payload.clone()).collect();
        let metadata: Vec<serde_json::Value> = events.iter().map(|e| e.metadata.clone()).collect();
        // `quiet` tells the trigger not to notify: the announcer does, after the commit.
        let appended: Result<(String, i64), sqlx::Error> = sqlx::query_as(
            "WITH quiet AS (SELECT set_config('warden.announce', 'off', true)),
             appended AS (
                 INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                     event_version, payload, metadata)
                 SELECT e.* FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[],
                                        $5::text[], $6::jsonb[], $7::jsonb[]) AS e
                 CROSS JOIN quiet
                 RETURNING transaction_id, global_position)
             SELECT max(transaction_id)::text, max(global_position) FROM appended",
        )
        .bind(column(|e| e.aggregate_type.clone()))
        .bind(column(|e| e.aggregate_id.clone()))
        .bind(sequences)
        .bind(column(|e| e.event_type.clone()))
        .bind(column(|e| e.event_version.clone()))
        .bind(payloads)
        .bind(metadata)
        .fetch_one(&self.pool)
        .await;
        let (tx, position) = match appended {
            Ok(row) => row,
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        let transaction_id = tx
            .parse()
            .map_err(|_| sqlx::Error::Decode(format!("not an xid8: {tx}").into()))?;
        self.announcer.announce(column(|e| e.event_type.clone()));
        Ok(Some(Cursor {
            transaction_id,
            global_position: position,
        }))
    }

    pub async fn write_snapshot<A: Snapshotted>(
        &self,
        id: &str,
        aggregate: &A,
        sequence: usize,
    ) -> Result<(), StoreError> {
        let payload = serde_json::to_value(aggregate)?;
        // Never replace a newer snapshot with an older one.
        sqlx::query(
            "INSERT INTO aggregate_snapshots
                 (aggregate_type, aggregate_id, schema_version, last_sequence, payload)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
             SET schema_version = EXCLUDED.schema_version, last_sequence = EXCLUDED.last_sequence,
                 payload = EXCLUDED.payload, taken_at = now()
             WHERE aggregate_snapshots.last_sequence < EXCLUDED.last_sequence
                OR aggregate_snapshots.schema_version <> EXCLUDED.schema_version",
        )
        .bind(A::TYPE)
        .bind(id)
        .bind(A::SNAPSHOT_VERSION)
        .bind(sequence as i64)
        .bind(payload)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Spreads out writers that keep colliding on one aggregate: a random pause in a window that
/// doubles with each lost race, up to 32 ms.
async fn back_off(lost: usize) {
    let window = 1u64 << lost.min(5);
    let jitter = rand::random::<u64>() % (window + 1);
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
}

fn serialize<A: Aggregate>(
    id: &str,
    after: usize,
    events: &[A::Event],
    metadata: &HashMap<String, String>,
) -> Result<Vec<SerializedEvent>, StoreError> {
    let metadata = serde_json::to_value(metadata)?;
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            Ok(SerializedEvent::new(
                id.to_string(),
                after + i + 1,
                A::TYPE.to_string(),
                event.event_type(),
                event.event_version(),
                serde_json::to_value(event)?,
                metadata.clone(),
            ))
        })
        .collect()
}
