//! Workspace use cases: creation, members and roles, the "require MFA" policy.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use warden_aggregates::account::AccountCommand;
use warden_aggregates::shared::{AccountId, Email, Scope, WorkspaceId};
use warden_aggregates::workspace::{Role, Workspace, WorkspaceCommand, WorkspaceServices};

use crate::accounts::{AccountsService, Authenticated, RequestContext};
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
            .map_err(AppError::internal)?;
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
