//! Workspaces: creation, members and roles, and the "require MFA" policy. Turning the policy on
//! ends members' sessions that skipped MFA; that sweep is the reactor in `policy_sweep`, so it
//! finishes even if this process dies right after the policy committed.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::shared::{AccountId, Scope, WorkspaceId};
use warden_aggregates::workspace::{Role, Workspace, WorkspaceCommand};

use super::command::{Commands, Settle};
use super::context::{Authenticated, RequestContext};
use super::credentials::memberships;
use super::directory::Directory;
use super::error::AppError;
use super::personal::Personal;
use super::problem::ProblemCode;
use crate::adapters::store::Committed;

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

#[derive(Clone)]
pub struct Workspaces {
    commands: Commands,
    directory: Directory,
    pool: PgPool,
}

impl Workspaces {
    pub fn new(commands: Commands, directory: Directory, pool: PgPool) -> Self {
        Self {
            commands,
            directory,
            pool,
        }
    }

    /// The caller's workspaces, each with the caller's role, as their aggregates say now.
    pub async fn mine(&self, who: &Authenticated) -> Result<Vec<WorkspaceRecord>, AppError> {
        who.require(Scope::Read)?;
        let mut found = Vec::new();
        for membership in memberships(&self.commands, &self.pool, who.account_id).await? {
            found.push(self.get(who, membership.workspace_id()).await?);
        }
        Ok(found)
    }

    /// The members' addresses, for the workspace's account holders (who add them by address).
    pub async fn member_addresses(
        &self,
        record: &WorkspaceRecord,
    ) -> Result<Vec<(Uuid, Personal, Role)>, AppError> {
        if record.role != Role::AccountHolder {
            return Err(AppError::new(ProblemCode::AccountHolderRequired));
        }
        let mut members = Vec::with_capacity(record.members.len());
        for (account_id, role) in &record.members {
            let email = self.directory.email_of(AccountId(*account_id)).await?;
            members.push((*account_id, email, *role));
        }
        Ok(members)
    }

    /// Runs `command` on workspace `id` on behalf of `who`.
    async fn run(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
        ctx: &RequestContext,
        command: impl Fn() -> WorkspaceCommand,
        settle: Settle,
    ) -> Result<Committed<Workspace>, AppError> {
        let metadata = self.commands.metadata_for(who, ctx).await?;
        Ok(self
            .commands
            .workspace(id, command, &metadata, settle)
            .await?)
    }

    /// The workspace and the caller's role, if the caller is a member (others are told it
    /// does not exist).
    pub async fn membership(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
    ) -> Result<(Workspace, Role), AppError> {
        let workspace = self.commands.load_workspace(id).await?;
        let role = workspace
            .role_of(who.account_id)
            .ok_or_else(|| AppError::new(ProblemCode::WorkspaceNotFound))?;
        Ok((workspace, role))
    }

    pub async fn create(
        &self,
        who: &Authenticated,
        name: String,
        ctx: &RequestContext,
    ) -> Result<WorkspaceRecord, AppError> {
        who.require(Scope::Write)?;
        let id = WorkspaceId(Uuid::now_v7());
        let by = who.account_id;
        let command = || WorkspaceCommand::Create {
            workspace_id: id,
            name: name.clone(),
            by,
        };
        let committed = self.run(who, id, ctx, command, Settle::Views).await?;
        Ok(record(&committed.state, Role::AccountHolder))
    }

    pub async fn get(
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
        let account_id = self.directory.find(email).await?.ok_or_else(|| {
            AppError::with(
                ProblemCode::AccountNotFound,
                "no account has this email address",
            )
        })?;
        let by = who.account_id;
        let command = || WorkspaceCommand::AddMember {
            account_id,
            role,
            by,
        };
        self.run(who, id, ctx, command, Settle::Views).await?;
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
        let command = || WorkspaceCommand::ChangeRole {
            account_id,
            role,
            by,
        };
        self.run(who, id, ctx, command, Settle::Revocation).await?;
        Ok(())
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
        let command = || WorkspaceCommand::RemoveMember { account_id, by };
        self.run(who, id, ctx, command, Settle::Revocation).await?;
        Ok(())
    }

    /// Sets the policy. Turning it on ends every member's sessions that did not pass a second
    /// factor (the sweep reactor), and this answers once that is in force.
    pub async fn require_mfa(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
        required: bool,
        ctx: &RequestContext,
    ) -> Result<WorkspaceRecord, AppError> {
        who.require(Scope::Write)?;
        let by = who.account_id;
        let command = || WorkspaceCommand::RequireMfa { required, by };
        let committed = self.run(who, id, ctx, command, Settle::Revocation).await?;
        Ok(record(&committed.state, Role::AccountHolder))
    }
}
