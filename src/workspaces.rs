//! Workspace use cases: creation, members and roles, the "require MFA" policy.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;
use warden_aggregates::account::AccountCommand;
use warden_aggregates::shared::{AccountId, Email, Scope, WorkspaceId};
use warden_aggregates::workspace::archival::{schedule, Schedule};
use warden_aggregates::workspace::{
    Archival, Role, Workspace, WorkspaceCommand, WorkspaceServices,
};

use crate::accounts::{AccountsService, Authenticated, Credential, RequestContext};
use crate::error::AppError;
use crate::store::{Committed, ExecuteError, StoreError};

pub struct WorkspaceRecord {
    pub id: Uuid,
    pub name: String,
    pub mfa_required: bool,
    pub created_at: Option<DateTime<Utc>>,
    /// The caller's role.
    pub role: Role,
    pub members: Vec<(Uuid, Role)>,
}

fn record(workspace: &Workspace, role: Role) -> WorkspaceRecord {
    WorkspaceRecord {
        id: workspace.id.map(|w| w.0).unwrap_or_default(),
        name: workspace.name.clone(),
        mfa_required: workspace.mfa_required,
        created_at: workspace.created_at,
        role,
        members: workspace
            .members
            .iter()
            .map(|(account, role)| (account.0, *role))
            .collect(),
    }
}

fn not_found() -> AppError {
    AppError::rejected(
        warden_aggregates::shared::ErrorKind::NotFound,
        "workspace_not_found",
        "no such workspace",
    )
}

impl AccountsService {
    async fn run_workspace(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
        ctx: &RequestContext,
        command: impl Fn() -> WorkspaceCommand,
    ) -> Result<Committed<Workspace>, AppError> {
        let metadata = self.metadata_for(who, ctx).await?;
        let services = WorkspaceServices {
            clock: self.clock.clone(),
        };
        let result = self
            .store()
            .execute::<Workspace>(&id.to_string(), command, &services, &metadata)
            .await;
        let outcome = match &result {
            Ok(_) => "committed",
            Err(ExecuteError::Domain(_)) => "refused",
            Err(ExecuteError::Store(_)) => "failed",
        };
        self.metrics.command("workspace", outcome);
        let committed = result.map_err(|e| match e {
            ExecuteError::Domain(error) => {
                AppError::rejected(error.kind(), error.code(), error.to_string())
            }
            ExecuteError::Store(StoreError::Contended(_)) => AppError::Unavailable {
                code: "contended",
                detail: "too many concurrent changes to this workspace; retry".into(),
            },
            ExecuteError::Store(error) => AppError::internal(error),
        })?;
        self.settle(&committed, false).await?;
        Ok(committed)
    }

    /// The workspace, if the caller is a member (others are told it does not exist).
    async fn membership(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
    ) -> Result<(Workspace, Role), AppError> {
        let (workspace, _) = self
            .store()
            .load::<Workspace>(&id.to_string())
            .await
            .map_err(AppError::from)?;
        let role = workspace.role_of(who.account_id).ok_or_else(not_found)?;
        Ok((workspace, role))
    }

    pub async fn create_workspace(
        &self,
        who: &Authenticated,
        name: String,
        ctx: &RequestContext,
    ) -> Result<WorkspaceRecord, AppError> {
        who.require(Scope::Write)?;
        let id = WorkspaceId(Uuid::now_v7());
        let by = who.account_id;
        let committed = self
            .run_workspace(who, id, ctx, || WorkspaceCommand::Create {
                workspace_id: id,
                name: name.clone(),
                by,
            })
            .await?;
        Ok(record(&committed.state, Role::AccountHolder))
    }

    pub async fn workspace(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
    ) -> Result<WorkspaceRecord, AppError> {
        who.require(Scope::Read)?;
        let (workspace, role) = self.membership(who, id).await?;
        Ok(record(&workspace, role))
    }

    pub async fn add_member(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
        email: &str,
        role: Role,
        ctx: &RequestContext,
    ) -> Result<AccountId, AppError> {
        who.require(Scope::Write)?;
        let account = match Email::parse(email) {
            Ok(email) => self.account_id_for(&email).await?,
            Err(_) => None,
        };
        let account_id = account.ok_or_else(|| {
            AppError::rejected(
                warden_aggregates::shared::ErrorKind::NotFound,
                "account_not_found",
                "no account has this email address",
            )
        })?;
        let by = who.account_id;
        self.run_workspace(who, id, ctx, || WorkspaceCommand::AddMember {
            account_id,
            role,
            by,
        })
        .await?;
        Ok(account_id)
    }

    pub async fn change_role(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
        account_id: AccountId,
        role: Role,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require(Scope::Write)?;
        let by = who.account_id;
        self.run_workspace(who, id, ctx, || WorkspaceCommand::ChangeRole {
            account_id,
            role,
            by,
        })
        .await
        .map(|_| ())
    }

    pub async fn remove_member(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
        account_id: AccountId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require(Scope::Write)?;
        let by = who.account_id;
        self.run_workspace(who, id, ctx, || WorkspaceCommand::RemoveMember {
            account_id,
            by,
        })
        .await
        .map(|_| ())
    }

    /// Sets the policy. Turning it on ends every member's sessions that did not pass a second
    /// factor, so the policy holds from now on, not only from the next login.
    pub async fn require_mfa(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
        required: bool,
        ctx: &RequestContext,
    ) -> Result<WorkspaceRecord, AppError> {
        who.require(Scope::Write)?;
        let by = who.account_id;
        let committed = self
            .run_workspace(who, id, ctx, || WorkspaceCommand::RequireMfa {
                required,
                by,
            })
            .await?;
        if required {
            let metadata: HashMap<String, String> = self.metadata_for(who, ctx).await?;
            for member in committed.state.members.keys() {
                let ended = self
                    .execute(*member, || AccountCommand::EndSessionsWithoutMfa, &metadata)
                    .await?;
                self.settle(&ended, true).await?;
            }
        }
        Ok(record(&committed.state, Role::AccountHolder))
    }
}

pub struct ArchivalRecord {
    pub workspace_id: Uuid,
    pub days: Option<u32>,
    pub schedule: Option<Schedule>,
    pub last_purge_at: Option<DateTime<Utc>>,
    pub last_cutoff: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ScheduleRow {
    workspace_id: Uuid,
    days: Option<i32>,
    since: DateTime<Utc>,
    last_purge_at: Option<DateTime<Utc>>,
    last_cutoff: Option<DateTime<Utc>>,
}

fn archival_record(id: Uuid, archival: &Archival, now: DateTime<Utc>) -> ArchivalRecord {
    let schedule = match (archival.days, archival.since) {
        (Some(days), Some(since)) => Some(schedule(days, since, archival.last_purge_at, now)),
        _ => None,
    };
    ArchivalRecord {
        workspace_id: id,
        days: archival.days,
        schedule,
        last_purge_at: archival.last_purge_at,
        last_cutoff: archival.last_cutoff,
    }
}

impl AccountsService {
    /// Data services (an API token with the `archival` scope) and platform admins.
    async fn require_data_service(&self, who: &Authenticated) -> Result<(), AppError> {
        match &who.credential {
            Credential::ApiToken { scopes, .. } if scopes.contains(&Scope::Archival) => Ok(()),
            _ => self.require_admin(who).await,
        }
    }

    pub async fn archival(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
    ) -> Result<ArchivalRecord, AppError> {
        who.require(Scope::Read)?;
        let (workspace, _) = self.membership(who, id).await?;
        Ok(archival_record(id.0, &workspace.archival, self.clock.now()))
    }

    pub async fn set_archival_days(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
        days: Option<u32>,
        ctx: &RequestContext,
    ) -> Result<ArchivalRecord, AppError> {
        who.require(Scope::Write)?;
        let by = who.account_id;
        let committed = self
            .run_workspace(who, id, ctx, || WorkspaceCommand::SetArchivalDays {
                days,
                by,
            })
            .await?;
        Ok(archival_record(
            id.0,
            &committed.state.archival,
            self.clock.now(),
        ))
    }

    /// Every workspace with a retention, and when its next purge is due.
    pub async fn archival_schedule(
        &self,
        who: &Authenticated,
        due_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<ArchivalRecord>, AppError> {
        self.require_data_service(who).await?;
        let rows: Vec<ScheduleRow> = sqlx::query_as(
            "SELECT workspace_id, days, since, last_purge_at, last_cutoff
             FROM archival_schedule_v1 WHERE days IS NOT NULL ORDER BY workspace_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let now = self.clock.now();
        let mut records: Vec<ArchivalRecord> = rows
            .into_iter()
            .map(|row| {
                let archival = Archival {
                    days: row.days.map(|d| d.max(0) as u32),
                    since: Some(row.since),
                    last_purge_at: row.last_purge_at,
                    last_cutoff: row.last_cutoff,
                };
                archival_record(row.workspace_id, &archival, now)
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
        let committed = self
            .run_workspace(who, id, ctx, || WorkspaceCommand::RecordPurge {
                cutoff,
                counts: counts.clone(),
                by,
            })
            .await?;
        Ok(archival_record(
            id.0,
            &committed.state.archival,
            self.clock.now(),
        ))
    }
}
