//! Reads of the session history view (`views::session_history`): an account's sessions and its
//! failed attempts, newest first.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::credentials::SessionLifetime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub session_id: Uuid,
    /// Sealed under the account's key, as are `ip` and `user_agent`.
    pub device: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub method: String,
    pub started_at: DateTime<Utc>,
    pub end_reason: Option<String>,
    /// For a sign-in through an identity provider: `provider_id`, `issuer`, `amr`, `acr`.
    pub provider: Option<serde_json::Value>,
    #[sqlx(flatten)]
    pub lifetime: SessionLifetime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FailedAttempt {
    pub at: DateTime<Utc>,
    pub purpose: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub async fn sessions_of(
    pool: &PgPool,
    account_id: Uuid,
    limit: i64,
) -> Result<Vec<SessionRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT h.session_id, h.device, h.ip, h.user_agent, h.method, h.started_at,
                h.expires_at, h.idle_timeout_secs, h.ended_at, h.end_reason, h.provider,
                COALESCE(a.last_seen_at, h.started_at) AS last_seen_at
         FROM session_history_v1 h
         LEFT JOIN session_activity a ON a.session_id = h.session_id
         WHERE h.account_id = $1
         ORDER BY h.started_at DESC, h.session_id DESC
         LIMIT $2",
    )
    .bind(account_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn failures_of(
    pool: &PgPool,
    account_id: Uuid,
    limit: i64,
) -> Result<Vec<FailedAttempt>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at, purpose, ip, user_agent FROM login_failures_v1
         WHERE account_id = $1 ORDER BY at DESC, global_position DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}
