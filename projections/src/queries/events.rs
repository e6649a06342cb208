//! Reads of the event log itself: one aggregate's events in order for auditors, and the stream's
//! pages for data teams.

use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};

use crate::runtime::checkpoint::{parse_xid8, Cursor};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AggregateEvent {
    pub sequence: i64,
    pub transaction_id: String,
    pub global_position: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
}

pub async fn of_aggregate(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<AggregateEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sequence, transaction_id::text AS transaction_id, global_position, event_type,
                event_version, payload, metadata
         FROM events WHERE aggregate_type = $1 AND aggregate_id = $2
         ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(pool)
    .await
}

/// An event as the stream serves it: the body of its payload (`{"<Variant>": {fields}}`) as the
/// JSON text PostgreSQL writes, so a page needs no decoding of bodies with nothing to open.
#[derive(Debug, Clone)]
pub struct StreamedEvent {
    pub cursor: Cursor,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The payload's body as JSON text; `{}` when the payload has none.
    pub data: String,
    /// The body's `at`, else its `started_at`, as stored.
    pub at: Option<String>,
    pub metadata: Value,
}

/// Up to `limit` events after `from` in commit order, from transactions that have all ended (the
/// same rows as `events_after`).
pub async fn streamed_after(
    conn: &mut PgConnection,
    from: Cursor,
    limit: i64,
) -> Result<Vec<StreamedEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT e.transaction_id::text AS transaction_id, e.global_position, e.aggregate_type,
                e.aggregate_id, e.sequence, e.event_type, e.event_version, e.metadata,
                coalesce(b.body, '{}')::text AS data,
                coalesce(b.body -> 'at', b.body -> 'started_at') #>> '{}' AS at
         FROM events e
         CROSS JOIN LATERAL (SELECT jsonb_path_query_first(e.payload, '$.*') AS body) b
         WHERE (e.transaction_id, e.global_position) > ($1::text::xid8, $2)
           AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY e.transaction_id, e.global_position
         LIMIT $3",
    )
    .bind(from.transaction_id.to_string())
    .bind(from.global_position)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(StreamedEvent {
                cursor: Cursor {
                    transaction_id: parse_xid8(row.try_get("transaction_id")?)?,
                    global_position: row.try_get("global_position")?,
                },
                aggregate_type: row.try_get("aggregate_type")?,
                aggregate_id: row.try_get("aggregate_id")?,
                sequence: row.try_get("sequence")?,
                event_type: row.try_get("event_type")?,
                event_version: row.try_get("event_version")?,
                data: row.try_get("data")?,
                at: row.try_get("at")?,
                metadata: row.try_get("metadata")?,
            })
        })
        .collect()
}
