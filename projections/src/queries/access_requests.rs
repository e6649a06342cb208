//! Reads of the access requests view (`views::access_requests`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccessRequestRecord {
    pub request_id: Uuid,
    pub account_id: Uuid,
    /// Sealed under the account's key.
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    pub status: String,
    pub decided_at: Option<DateTime<Utc>>,
}

/// Newest first, of one status or all.
pub async fn list(
    pool: &PgPool,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<AccessRequestRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_id, account_id, reason, requested_at, status, decided_at
         FROM access_requests_v1
         WHERE $1::text IS NULL OR status = $1
         ORDER BY requested_at DESC LIMIT $2",
    )
    .bind(status)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn account_of(pool: &PgPool, request_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT account_id FROM access_requests_v1 WHERE request_id = $1")
        .bind(request_id)
        .fetch_optional(pool)
        .await
}
