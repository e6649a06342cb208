//! `archival_schedule_v1`: per workspace, the retention in days and the last purge a data
//! service acknowledged. It computes nothing; `warden_aggregates::workspace::archival` turns
//! these facts into dates when they are read.

use async_trait::async_trait;
use sqlx::PgConnection;
use warden_aggregates::workspace::WorkspaceEvent;

use crate::runtime::projector::{decode, ProjectionError, Projector, StoredEvent};
use crate::views::workspaces::workspace_id;

pub struct ArchivalSchedule;

#[async_trait]
impl Projector for ArchivalSchedule {
    fn name(&self) -> &'static str {
        "archival_schedule_v1"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["archival_schedule_v1"]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            WorkspaceEvent::ARCHIVAL_DAYS_SET,
            WorkspaceEvent::PURGE_RECORDED,
        ]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let workspace = workspace_id(event)?;
        match decode::<WorkspaceEvent>(event)? {
            WorkspaceEvent::ArchivalDaysSet { days, at, .. } => {
                sqlx::query(
                    "INSERT INTO archival_schedule_v1 (workspace_id, days, since) VALUES ($1, $2, $3)
                     ON CONFLICT (workspace_id) DO UPDATE SET days = EXCLUDED.days,
                         since = EXCLUDED.since",
                )
                .bind(workspace)
                .bind(days.map(|d| d as i32))
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            WorkspaceEvent::PurgeRecorded {
                cutoff, counts, at, ..
            } => {
                sqlx::query(
                    "UPDATE archival_schedule_v1
                     SET last_purge_at = $2, last_cutoff = $3, last_counts = $4
                     WHERE workspace_id = $1",
                )
                .bind(workspace)
                .bind(at)
                .bind(cutoff)
                .bind(serde_json::to_value(counts).unwrap_or_default())
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
