//! When sessions were last seen and tokens last used, written behind the request: each process
//! notes a credential at most once per [`RESOLUTION_SECS`], and a writer task puts what was
//! noted down in one statement per table every [`FLUSH_EVERY`]. Nothing here is an event: the
//! account's stream only records facts, not traffic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

/// A credential's recorded activity may be this far behind its real last use (plus one flush).
pub const RESOLUTION_SECS: i64 = 60;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub enum Seen {
    Session(Uuid, DateTime<Utc>),
    ApiToken(Uuid, DateTime<Utc>),
}

/// Where requests note activity; cheap to clone.
#[derive(Clone)]
pub struct Activity {
    notes: mpsc::UnboundedSender<Seen>,
    /// Sessions seen here and not yet written down, so this process never judges a session
    /// idle that it saw itself.
    unwritten: Arc<Mutex<HashMap<Uuid, DateTime<Utc>>>>,
}

impl Activity {
    /// The notebook, and the task that writes it down.
    pub fn start(pool: PgPool) -> (Self, tokio::task::JoinHandle<()>) {
        let (notes, received) = mpsc::unbounded_channel();
        let unwritten = Arc::new(Mutex::new(HashMap::new()));
        let task = tokio::spawn(write_behind(pool, received, unwritten.clone()));
        (Self { notes, unwritten }, task)
    }

    pub fn note(&self, seen: Seen) {
        if let Seen::Session(id, at) = seen {
            if let Ok(mut unwritten) = self.unwritten.lock() {
                let latest = unwritten.entry(id).or_insert(at);
                *latest = (*latest).max(at);
            }
        }
        // Only fails once the writer has stopped, at shutdown.
        let _ = self.notes.send(seen);
    }

    /// When this process last saw the session, if that is not written down yet.
    pub fn unwritten(&self, session_id: Uuid) -> Option<DateTime<Utc>> {
        self.unwritten.lock().ok()?.get(&session_id).copied()
    }
}

#[derive(Default)]
struct Pending {
    sessions: HashMap<Uuid, DateTime<Utc>>,
    tokens: HashMap<Uuid, DateTime<Utc>>,
}

impl Pending {
    fn add(&mut self, seen: Seen) {
        let (map, id, at) = match seen {
            Seen::Session(id, at) => (&mut self.sessions, id, at),
            Seen::ApiToken(id, at) => (&mut self.tokens, id, at),
        };
        let latest = map.entry(id).or_insert(at);
        *latest = (*latest).max(at);
    }
}

type Unwritten = Arc<Mutex<HashMap<Uuid, DateTime<Utc>>>>;

async fn write_behind(
    pool: PgPool,
    mut received: mpsc::UnboundedReceiver<Seen>,
    unwritten: Unwritten,
) {
    let mut pending = Pending::default();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            seen = received.recv() => match seen {
                Some(seen) => pending.add(seen),
                None => {
                    flush(&pool, &mut pending, &unwritten).await;
                    return;
                }
            },
            _ = tick.tick() => flush(&pool, &mut pending, &unwritten).await,
        }
    }
}

/// Writes what is pending; on failure it stays pending for the next flush.
async fn flush(pool: &PgPool, pending: &mut Pending, unwritten: &Unwritten) {
    if !pending.sessions.is_empty() {
        match write(
            pool,
            "session_activity",
            "session_id",
            "last_seen_at",
            &pending.sessions,
        )
        .await
        {
            Ok(()) => {
                if let Ok(mut unwritten) = unwritten.lock() {
                    for (id, at) in &pending.sessions {
                        if unwritten.get(id).is_some_and(|u| u <= at) {
                            unwritten.remove(id);
                        }
                    }
                }
                pending.sessions.clear();
            }
            Err(error) => tracing::warn!(%error, "session activity not written yet"),
        }
    }
    if !pending.tokens.is_empty() {
        match write(
            pool,
            "token_activity",
            "token_id",
            "last_used_at",
            &pending.tokens,
        )
        .await
        {
            Ok(()) => pending.tokens.clear(),
            Err(error) => tracing::warn!(%error, "token activity not written yet"),
        }
    }
}

/// One upsert for the whole batch, never moving a time back.
async fn write(
    pool: &PgPool,
    table: &str,
    id: &str,
    at: &str,
    batch: &HashMap<Uuid, DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = batch.iter().map(|(i, t)| (*i, *t)).unzip();
    sqlx::query(&format!(
        "INSERT INTO {table} ({id}, {at})
         SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[])
         ON CONFLICT ({id}) DO UPDATE SET {at} = EXCLUDED.{at}
         WHERE {table}.{at} < EXCLUDED.{at}"
    ))
    .bind(ids)
    .bind(times)
    .execute(pool)
    .await?;
    Ok(())
}
