//! Publishing the event stream to NATS JetStream: a projector whose "view" is a JetStream stream.
//! Each event goes to `<prefix>.<type>` with `Nats-Msg-Id` = the event's id, and the projector's
//! checkpoint moves only after JetStream has acknowledged the message. After a crash the events
//! since the checkpoint are published again and JetStream's duplicate window drops the repeats.
//!
//! Personal data stays sealed (`[sealed]`): a broker keeps copies that an erasure cannot reach
//! (docs/adr/0009).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, context::Publish, stream};
use async_trait::async_trait;
use sqlx::PgConnection;
use warden_projections::{ProjectionError, Projector, StoredEvent};

use crate::app::stream::envelope;

/// How long JetStream remembers a message id to drop a repeat: longer than any restart.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

pub struct NatsPublisher {
    jetstream: jetstream::Context,
    prefix: String,
    stream_ready: AtomicBool,
}

/// The JetStream stream's name for a subject prefix: `warden.events` -> `WARDEN_EVENTS`.
pub fn stream_name(prefix: &str) -> String {
    prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl NatsPublisher {
    /// Connects in the background: Warden serves while NATS is away, and the publisher catches
    /// up from its checkpoint when NATS is back.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url)
            .await?;
        Ok(Self {
            jetstream: jetstream::new(client),
            prefix: prefix.trim_end_matches('.').to_string(),
            stream_ready: AtomicBool::new(false),
        })
    }

    async fn ensure_stream(&self) -> Result<(), String> {
        if self.stream_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.jetstream
            .get_or_create_stream(stream::Config {
                name: stream_name(&self.prefix),
                subjects: vec![format!("{}.>", self.prefix)],
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        self.stream_ready.store(true, Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait]
impl Projector for NatsPublisher {
    fn name(&self) -> &'static str {
        "nats_publisher"
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[]
    }

    fn reads_every_event(&self) -> bool {
        true
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        &self,
        _: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let failed = |reason: String| ProjectionError::Delivery {
            cursor: event.cursor,
            reason,
        };
        self.ensure_stream().await.map_err(failed)?;
        let message = envelope(event, None);
        let payload = serde_json::to_vec(&message).map_err(|e| failed(e.to_string()))?;
        let subject = format!("{}.{}", self.prefix, event.event_type);
        let ack = self
            .jetstream
            .send_publish(
                subject,
                Publish::build()
                    .payload(payload.into())
                    .message_id(&message.id),
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
        ack.await.map_err(|e| failed(e.to_string()))?;
        Ok(())
    }
}
