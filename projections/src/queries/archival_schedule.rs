//! Reads of the archival schedule view (`views::archival_schedule`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScheduleRecord {
    pub workspace_id: Uuid,
    pub days: Option<i32>,
    pub since: DateTime<Utc>,
    pub last_purge_at: Option<DateTime<Utc>>,
    pub last_cutoff: Option<DateTime<Utc>>,
}

/// Every workspace with a retention.
pub async fn with_retention(pool: &PgPool) -> Result<Vec<ScheduleRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT workspace_id, days, since, last_purge_at, last_cutoff
         FROM archival_schedule_v1 WHERE days IS NOT NULL ORDER BY workspace_id",
    )
    .fetch_all(pool)
    .await
}
