//! Reads of the event log itself for auditors: one aggregate's events in order.

use serde_json::Value;
use sqlx::PgPool;

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
