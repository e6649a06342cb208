use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::runtime::checkpoint::Cursor;

/// One stored event as a projector sees it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub cursor: Cursor,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// Shared: a batch handed to several views is filtered for each without copying payloads.
    pub payload: Arc<Value>,
    pub metadata: Arc<Value>,
}

impl StoredEvent {
    /// The event of a row with the `events` table's column names, at `cursor`.
    pub(crate) fn from_row(row: &PgRow, cursor: Cursor) -> Result<Self, sqlx::Error> {
        Ok(Self {
            cursor,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: Arc::new(row.try_get("payload")?),
            metadata: Arc::new(row.try_get("metadata")?),
        })
    }

    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event {cursor} ({event_type}) cannot be decoded: {source}")]
    Decode {
        cursor: Cursor,
        event_type: String,
        source: serde_json::Error,
    },
    /// A projector that delivers events elsewhere (a message broker) could not.
    #[error("event {cursor} not delivered: {reason}")]
    Delivery { cursor: Cursor, reason: String },
    /// A reactor's commands for an event did not go through (they are tried again).
    #[error("reaction to event {cursor} failed: {reason}")]
    Reaction { cursor: Cursor, reason: String },
}

/// A view built from the log. It names the event types it consumes (the runner filters in SQL)
/// and applies each one inside the transaction that also moves its checkpoint. Applying the same
/// event twice must leave the same rows.
#[async_trait]
pub trait Projector: Send + Sync {
    fn name(&self) -> &'static str;
    fn event_types(&self) -> &'static [&'static str];
    /// A projector of the whole log (a hash chain, a publisher) reads every event, whatever
    /// its type, including types this build does not know.
    fn reads_every_event(&self) -> bool {
        false
    }
    /// The tables it owns and nothing else writes: what `warden replay` rebuilds and compares.
    fn tables(&self) -> &'static [&'static str];
    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError>;

    /// Applies a batch, in order, in the transaction that moves the checkpoint. One event at a
    /// time unless the projector can write a batch at once (an append-only view).
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            self.apply(conn, event).await?;
        }
        Ok(())
    }
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    event: &StoredEvent,
) -> Result<T, ProjectionError> {
    // From the stored tree by reference: no copy of the payload first.
    T::deserialize(&*event.payload).map_err(|source| ProjectionError::Decode {
        cursor: event.cursor,
        event_type: event.event_type.clone(),
        source,
    })
}

/// The fields of a stored event: its payload is `{"<Variant>": {fields}}` (serde's external
/// tag), and readers want the fields.
pub fn event_body(payload: &serde_json::Value) -> Option<&serde_json::Value> {
    payload.as_object()?.values().next()
}
