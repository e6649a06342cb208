//! Reads of the audit log view (`views::audit_log`): filtered pages, newest first.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::Cursor;

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub subject: Option<Uuid>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub workspace: Option<Uuid>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRecord {
    pub transaction_id: String,
    pub global_position: i64,
    pub at: DateTime<Utc>,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub actor: String,
    pub subject: Option<Uuid>,
    pub workspace_id: Option<Uuid>,
    pub method: Option<String>,
    /// Sealed under the actor's key (or the subject's, for an anonymous actor).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// One page, newest first, strictly before `before`.
pub async fn page(
    pool: &PgPool,
    filter: &AuditFilter,
    before: Option<Cursor>,
    limit: i64,
) -> Result<Vec<AuditRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT transaction_id::text AS transaction_id, global_position, at, action, outcome,
                reason, actor, subject, workspace_id, method, ip, user_agent, request_id
         FROM audit_log_v1
         WHERE ($1::text IS NULL OR actor = $1)
           AND ($2::uuid IS NULL OR subject = $2)
           AND ($3::text IS NULL OR action = $3)
           AND ($4::text IS NULL OR outcome = $4)
           AND ($5::timestamptz IS NULL OR at >= $5)
           AND ($6::timestamptz IS NULL OR at < $6)
           AND ($7::uuid IS NULL OR workspace_id = $7)
           AND ($8::text IS NULL
                OR (transaction_id, global_position) < ($8::text::xid8, $9))
         ORDER BY audit_log_v1.transaction_id DESC, audit_log_v1.global_position DESC
         LIMIT $10",
    )
    .bind(&filter.actor)
    .bind(filter.subject)
    .bind(&filter.action)
    .bind(&filter.outcome)
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.workspace)
    .bind(before.map(|c| c.transaction_id.to_string()))
    .bind(before.map_or(0, |c| c.global_position))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// What the auditors' chart counts per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Series {
    SignIns,
    Failures,
    Locks,
    Revocations,
}

impl Series {
    pub const ALL: [Series; 4] = [
        Series::SignIns,
        Series::Failures,
        Series::Locks,
        Series::Revocations,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIns => "sign_ins",
            Self::Failures => "failures",
            Self::Locks => "locks",
            Self::Revocations => "revocations",
        }
    }
}

/// Per UTC day since `from`: sign-ins, failed checks, lock-outs, and sessions or tokens ended by
/// someone (not a sign-out or a timeout).
pub async fn daily_counts(
    pool: &PgPool,
    from: DateTime<Utc>,
) -> Result<Vec<(chrono::NaiveDate, Series, i64)>, sqlx::Error> {
    use warden_aggregates::account::AccountEvent;
    let locks = [
        AccountEvent::LOCKED_OUT,
        AccountEvent::MFA_LOCKED_OUT,
        AccountEvent::PIN_LOCKED,
    ];
    let rows: Vec<(chrono::NaiveDate, String, i64)> = sqlx::query_as(
        "SELECT (at AT TIME ZONE 'UTC')::date AS day,
                CASE WHEN action = $2 THEN 'sign_ins'
                     WHEN action = ANY($3) THEN 'failures'
                     WHEN action = ANY($4) THEN 'locks'
                     ELSE 'revocations' END AS series,
                count(*)
         FROM audit_log_v1
         WHERE at >= $1
           AND (action = $2 OR action = ANY($3) OR action = ANY($4) OR action = $5
                OR (action = $6
                    AND coalesce(reason, '') NOT IN ('logged_out', 'expired', 'idle_timeout')))
         GROUP BY 1, 2",
    )
    .bind(from)
    .bind(AccountEvent::SESSION_STARTED)
    .bind(AccountEvent::FAILED_CHECKS)
    .bind(&locks[..])
    .bind(AccountEvent::API_TOKEN_REVOKED)
    .bind(AccountEvent::SESSION_ENDED)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(day, series, count)| {
            let series = Series::ALL.into_iter().find(|s| s.as_str() == series)?;
            Some((day, series, count))
        })
        .collect())
}
