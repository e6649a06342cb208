//! Archival: a workspace's retention, the purge schedule across workspaces for the data
//! services, and their acknowledgements of purges done.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::shared::{Scope, WorkspaceId};
use warden_aggregates::workspace::archival::{schedule, Schedule};
use warden_aggregates::workspace::{Archival as Retention, WorkspaceCommand};
use warden_projections::queries;

use super::command::{Commands, Settle};
use super::context::{Authenticated, Credential, RequestContext};
use super::error::AppError;
use super::workspaces::Workspaces;

pub struct ArchivalRecord {
    pub workspace_id: Uuid,
    pub days: Option<u32>,
    pub schedule: Option<Schedule>,
    pub last_purge_at: Option<DateTime<Utc>>,
    pub last_cutoff: Option<DateTime<Utc>>,
}

fn archival_record(id: Uuid, retention: &Retention, now: DateTime<Utc>) -> ArchivalRecord {
    let schedule = match (retention.days, retention.since) {
        (Some(days), Some(since)) => Some(schedule(days, since, retention.last_purge_at, now)),
        _ => None,
    };
    ArchivalRecord {
        workspace_id: id,
        days: retention.days,
        schedule,
        last_purge_at: retention.last_purge_at,
        last_cutoff: retention.last_cutoff,
    }
}

#[derive(Clone)]
pub struct Archival {
    commands: Commands,
    workspaces: Workspaces,
    pool: PgPool,
}

impl Archival {
    pub fn new(commands: Commands, workspaces: Workspaces, pool: PgPool) -> Self {
        Self {
            commands,
            workspaces,
            pool,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.commands.clock().now()
    }

    /// Data services (an API token with the `archival` scope) and platform admins.
    async fn require_data_service(&self, who: &Authenticated) -> Result<(), AppError> {
        match &who.credential {
            Credential::ApiToken { scopes, .. } if scopes.contains(&Scope::Archival) => Ok(()),
            _ => self.commands.require_admin(who).await,
        }
    }

    async fn run(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
        ctx: &RequestContext,
        command: impl Fn() -> WorkspaceCommand,
    ) -> Result<ArchivalRecord, AppError> {
        let metadata = self.commands.metadata_for(who, ctx).await?;
        let committed = self
            .commands
            .workspace(id, command, &metadata, Settle::Views)
            .await?;
        Ok(archival_record(id.0, &committed.state.archival, self.now()))
    }

    pub async fn get(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
    ) -> Result<ArchivalRecord, AppError> {
        who.require(Scope::Read)?;
        let (workspace, _) = self.workspaces.membership(who, id).await?;
        Ok(archival_record(id.0, &workspace.archival, self.now()))
    }

    pub async fn set_days(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
        days: Option<u32>,
        ctx: &RequestContext,
    ) -> Result<ArchivalRecord, AppError> {
        who.require(Scope::Write)?;
        let by = who.account_id;
        self.run(who, id, ctx, || WorkspaceCommand::SetArchivalDays {
            days,
            by,
        })
        .await
    }

    /// Every workspace with a retention, and when its next purge is due.
    pub async fn schedule(
        &self,
        who: &Authenticated,
        due_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<ArchivalRecord>, AppError> {
        self.require_data_service(who).await?;
        let rows = queries::archival_schedule::with_retention(&self.pool).await?;
        let now = self.now();
        let mut records: Vec<ArchivalRecord> = rows
            .into_iter()
            .map(|row| {
                let retention = Retention {
                    days: row.days.map(|d| d.max(0) as u32),
                    since: Some(row.since),
                    last_purge_at: row.last_purge_at,
                    last_cutoff: row.last_cutoff,
                };
                archival_record(row.workspace_id, &retention, now)
            })
            .filter(|r| {
                due_before.is_none_or(|due| r.schedule.is_some_and(|s| s.next_purge_at <= due))
            })
            .collect();
        records.sort_by_key(|r| r.schedule.map(|s| s.next_purge_at));
        Ok(records)
    }

    pub async fn record_purge(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
        cutoff: DateTime<Utc>,
        counts: BTreeMap<String, u64>,
        ctx: &RequestContext,
    ) -> Result<ArchivalRecord, AppError> {
        self.require_data_service(who).await?;
        let by = who.account_id;
        self.run(who, id, ctx, || WorkspaceCommand::RecordPurge {
            cutoff,
            counts: counts.clone(),
            by,
        })
        .await
    }
}
