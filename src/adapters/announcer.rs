//! The commit notification of the event store's appends, sent after the commit and for many
//! commits at once (docs/adr/0025).
//!
//! A `NOTIFY` in the appending transaction makes PostgreSQL serialize every such commit on one
//! lock, through its WAL flush: commits that would share a flush wait for one another instead.
//! The store's appends therefore tell the `events` trigger to stay quiet and hand their event
//! types here; one task per store sends them in one notification per round trip, naming this
//! process as the trigger would. Other writers (a `psql` session, an older Warden) still
//! notify from the trigger.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// PostgreSQL refuses a notification payload of 8,000 bytes or more.
const PAYLOAD_LIMIT: usize = 7_900;
/// The least time between two notifications of one store. Every process's credential follower
/// and the readers of the other processes read the log once per notification; under a load of
/// commands one for every round trip had each of them read hundreds of times a second for a
/// few events each. This process's own readers are woken when a commit returns, and a
/// revocation's barrier notifies on its own, so the pace delays neither.
const PACE: Duration = Duration::from_millis(10);

/// What the task sends from, before it is started.
type Unstarted = (mpsc::UnboundedReceiver<Vec<String>>, PgPool);

#[derive(Clone)]
pub struct Announcer {
    sender: mpsc::UnboundedSender<Vec<String>>,
    /// The receiving end until the first announcement starts the task (a store may be made
    /// outside a runtime).
    idle: Arc<Mutex<Option<Unstarted>>>,
}

impl Announcer {
    pub fn new(pool: PgPool) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self {
            sender,
            idle: Arc::new(Mutex::new(Some((receiver, pool)))),
        }
    }

    /// Announces a commit that appended events of `types`. Returns at once; the notification
    /// follows within a round trip (and `PACE`), together with those of the commits made
    /// meanwhile.
    pub fn announce(&self, types: Vec<String>) {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.take());
        if let Some((receiver, pool)) = idle {
            tokio::spawn(send_announcements(receiver, pool));
        }
        // Fails only once every store of this announcer is gone, and the task with them.
        let _ = self.sender.send(types);
    }
}

/// Until every store of the announcer is dropped: waits for a commit (and for `PACE` after the
/// last notification), takes every commit announced meanwhile, and sends their types in one
/// notification.
async fn send_announcements(mut commits: mpsc::UnboundedReceiver<Vec<String>>, pool: PgPool) {
    let writer = pool
        .connect_options()
        .get_application_name()
        .unwrap_or_default()
        .to_owned();
    let mut last_sent: Option<Instant> = None;
    while let Some(first) = commits.recv().await {
        if let Some(at) = last_sent {
            tokio::time::sleep_until(at + PACE).await;
        }
        let mut types: BTreeSet<String> = first.into_iter().collect();
        while let Ok(more) = commits.try_recv() {
            types.extend(more);
        }
        let payload = payload(&writer, &types);
        let sent = sqlx::query("SELECT pg_notify('warden_events', $1)")
            .bind(&payload)
            .execute(&pool)
            .await;
        last_sent = Some(Instant::now());
        if let Err(error) = sent {
            // Every reader also looks at the log on its own every few hundred milliseconds.
            tracing::debug!(%error, "commits not announced; other processes see them at their next poll");
        }
    }
}

/// The trigger's payload: the writer's name on a first line, then the event types; without
/// the types (every reader woken) when they would not fit.
fn payload(writer: &str, types: &BTreeSet<String>) -> String {
    let named: Vec<&str> = types.iter().map(String::as_str).collect();
    let payload = format!("{writer}\n{}", named.join(" "));
    if payload.len() < PAYLOAD_LIMIT {
        payload
    } else {
        format!("{writer}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_names_the_writer_then_each_type_once_and_drops_types_that_do_not_fit() {
        let types: BTreeSet<String> = ["b", "a", "b"].iter().map(|t| t.to_string()).collect();
        assert_eq!(payload("warden-1", &types), "warden-1\na b");
        let many: BTreeSet<String> = (0..1000).map(|n| format!("account.type.{n}")).collect();
        assert_eq!(payload("warden-1", &many), "warden-1\n");
    }
}
