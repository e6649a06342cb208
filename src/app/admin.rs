//! Platform administration: the first admin (from the command line), support actions on
//! accounts, and the access requests of locked-out users.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::account::{AccountCommand, AccountError, SupportCommand};
use warden_aggregates::shared::{AccountId, Email, SealedText};
use warden_projections::queries;

use super::accounts::Accounts;
use super::command::{CommandError, Commands, Settle};
use super::context::{metadata, Authenticated, RequestContext};
use super::directory::Directory;
use super::error::AppError;
use super::personal::Personal;
use super::problem::ProblemCode;

const MAX_REASON: usize = 2000;
const LISTED_REQUESTS: i64 = 500;

pub struct AccessRequestEntry {
    pub id: Uuid,
    pub account_id: Uuid,
    pub email: Personal,
    pub reason: Personal,
    pub requested_at: DateTime<Utc>,
    pub status: String,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Admin {
    commands: Commands,
    directory: Directory,
    accounts: Accounts,
    pool: PgPool,
}

impl Admin {
    pub fn new(commands: Commands, directory: Directory, accounts: Accounts, pool: PgPool) -> Self {
        Self {
            commands,
            directory,
            accounts,
            pool,
        }
    }

    /// Creates the account if it does not exist (with `password`), then makes it an admin.
    /// Answers whether the account was created.
    pub async fn create_admin(
        &self,
        email: Email,
        password: SecretString,
    ) -> Result<(AccountId, bool), AppError> {
        let ctx = RequestContext {
            request_id: "cli:admin-create".into(),
            ..RequestContext::default()
        };
        let (account_id, created) = match self.directory.account_id_for(&email).await? {
            Some(id) => (id, false),
            None => (
                self.accounts.register(email, password, None, &ctx).await?,
                true,
            ),
        };
        // Granted by whoever runs the command line on the server: recorded as the operator.
        let mut metadata = metadata(&ctx, None, None);
        metadata.insert("actor".into(), "operator".into());
        metadata.insert("auth_method".into(), "command_line".into());
        let command = || AccountCommand::from(SupportCommand::GrantAdmin);
        self.commands
            .account(account_id, command, &metadata, Settle::Views)
            .await?;
        Ok((account_id, created))
    }

    /// Runs a support command on `target` after checking the caller is an administrator.
    async fn support(
        &self,
        who: &Authenticated,
        target: AccountId,
        ctx: &RequestContext,
        command: impl Fn() -> SupportCommand,
        settle: Settle,
    ) -> Result<(), AppError> {
        self.commands.require_admin(who).await?;
        let command = || AccountCommand::from(command());
        self.commands.by(who, ctx, target, command, settle).await?;
        Ok(())
    }

    pub async fn unlock(
        &self,
        who: &Authenticated,
        target: AccountId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let by = who.account_id;
        let command = || SupportCommand::Unlock { by };
        self.support(who, target, ctx, command, Settle::Views).await
    }

    /// Grants (`auditor`) or takes back the platform auditor role.
    pub async fn set_auditor(
        &self,
        who: &Authenticated,
        target: AccountId,
        auditor: bool,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let by = who.account_id;
        let command = || SupportCommand::SetAuditor { auditor, by };
        // Through the barrier: when the call returns, no process answers from a profile (the
        // credential cache's `GET /v1/me`) that still shows the role as it was.
        self.support(who, target, ctx, command, Settle::Revocation)
            .await
    }

    pub async fn reset_mfa(
        &self,
        who: &Authenticated,
        target: AccountId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let by = who.account_id;
        let command = || SupportCommand::ResetMfa { by };
        self.support(who, target, ctx, command, Settle::Revocation)
            .await
    }

    /// Erases an account's personal data: its credentials end, the event says so, its data key
    /// is destroyed and its address released. The log stays whole and replayable; sealed fields
    /// read `erased` from now on. Erasing again finishes an interrupted erasure.
    pub async fn erase(
        &self,
        who: &Authenticated,
        target: AccountId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        self.commands.require_admin(who).await?;
        let by = who.account_id;
        let metadata = self.commands.metadata_for(who, ctx).await?;
        let command = || AccountCommand::from(SupportCommand::Erase { by });
        match self
            .commands
            .account(target, command, &metadata, Settle::Revocation)
            .await
        {
            Ok(_)
            | Err(CommandError::Refused {
                refusal: AccountError::Erased,
                ..
            }) => {}
            Err(other) => return Err(other.into()),
        }
        self.directory.keys().destroy(target.0).await?;
        self.directory.release(target).await
    }

    /// Records an unblock request if the account exists. Callers always answer 202.
    pub async fn request_access(
        &self,
        email: &str,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        self.accounts.throttle().check(ctx.ip.as_deref())?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON {
            return Err(AppError::new(ProblemCode::InvalidReason));
        }
        let Some(account_id) = self.directory.find(email).await? else {
            return Ok(());
        };
        let Some(key) = self.directory.key(account_id).await? else {
            return Ok(());
        };
        let sealed = key.seal(reason);
        let metadata = metadata(ctx, Some(&key), None);
        let request_id = Uuid::now_v7();
        let command = || {
            AccountCommand::from(SupportCommand::RequestAccess {
                request_id,
                reason: sealed.clone(),
            })
        };
        self.commands
            .account(account_id, command, &metadata, Settle::Views)
            .await?;
        Ok(())
    }

    pub async fn access_requests(
        &self,
        who: &Authenticated,
        status: Option<&str>,
    ) -> Result<Vec<AccessRequestEntry>, AppError> {
        self.commands.require_admin(who).await?;
        let rows = queries::access_requests::list(&self.pool, status, LISTED_REQUESTS).await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let account_id = AccountId(row.account_id);
            let key = self.directory.key(account_id).await?;
            entries.push(AccessRequestEntry {
                id: row.request_id,
                account_id: row.account_id,
                email: self
                    .directory
                    .email_of(account_id)
                    .await
                    .unwrap_or(Personal::Erased),
                reason: Personal::open(key.as_ref(), &SealedText(row.reason)),
                requested_at: row.requested_at,
                status: row.status,
                decided_at: row.decided_at,
            });
        }
        Ok(entries)
    }

    pub async fn decide_access_request(
        &self,
        who: &Authenticated,
        request_id: Uuid,
        approve: bool,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        self.commands.require_admin(who).await?;
        let account_id = queries::access_requests::account_of(&self.pool, request_id)
            .await?
            .map(AccountId)
            .ok_or_else(|| AppError::new(ProblemCode::AccessRequestNotFound))?;
        let by = who.account_id;
        let command = || SupportCommand::DecideAccessRequest {
            request_id,
            approve,
            by,
        };
        self.support(who, account_id, ctx, command, Settle::Views)
            .await
    }
}
