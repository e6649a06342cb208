//! Platform administration: creating the first admin (CLI), and support actions on accounts.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;
use warden_aggregates::account::AccountCommand;
use warden_aggregates::shared::{AccountId, Email, ErrorKind, Scope, SealedText};

use crate::accounts::{AccountsService, Authenticated, RequestContext};
use crate::error::AppError;

impl AccountsService {
    /// The caller, if it is a platform administrator (and, for a token, has the `admin` scope).
    pub async fn require_admin(&self, who: &Authenticated) -> Result<(), AppError> {
        who.require(Scope::Admin)?;
        if self.account(who.account_id).await?.is_admin {
            Ok(())
        } else {
            Err(AppError::rejected(
                ErrorKind::Forbidden,
                "admin_required",
                "this needs a platform administrator",
            ))
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
        let (account_id, created) = match self.account_id_for(&email).await? {
            Some(id) => (id, false),
            None => (self.register(email, password, None, &ctx).await?, true),
        };
        // Granted by whoever runs the command line on the server: recorded as the operator.
        let mut metadata = crate::accounts::metadata(&ctx, None, None);
        metadata.insert("actor".into(), "operator".into());
        metadata.insert("auth_method".into(), "command_line".into());
        let committed = self
            .execute(account_id, || AccountCommand::GrantAdmin, &metadata)
            .await?;
        self.settle(&committed, false).await?;
        Ok((account_id, created))
    }

    pub async fn unlock(
        &self,
        who: &Authenticated,
        target: AccountId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        self.require_admin(who).await?;
        let by = who.account_id;
        self.act(who, target, ctx, || AccountCommand::Unlock { by }, false)
            .await
            .map(|_| ())
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
        self.require_admin(who).await?;
        let by = who.account_id;
        match self
            .act(who, target, ctx, || AccountCommand::Erase { by }, true)
            .await
        {
            Ok(_) => {}
            Err(AppError::Rejected {
                code: "account_erased",
                ..
            }) => {}
            Err(other) => return Err(other),
        }
        self.keys.destroy(target.0).await?;
        sqlx::query("DELETE FROM email_reservations WHERE account_id = $1")
            .bind(target.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn reset_mfa(
        &self,
        who: &Authenticated,
        target: AccountId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        self.require_admin(who).await?;
        let by = who.account_id;
        self.act(who, target, ctx, || AccountCommand::ResetMfa { by }, true)
            .await
            .map(|_| ())
    }
}

pub struct AccessRequestRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub email: String,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    pub status: String,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct AccessRequestRow {
    request_id: Uuid,
    account_id: Uuid,
    reason: String,
    requested_at: DateTime<Utc>,
    status: String,
    decided_at: Option<DateTime<Utc>>,
}

const MAX_REASON: usize = 2000;

impl AccountsService {
    /// Records an unblock request if the account exists. Callers always answer 202.
    pub async fn request_access(
        &self,
        email: &str,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON {
            return Err(AppError::invalid(
                "invalid_reason",
                format!("a reason has 1 to {MAX_REASON} characters"),
            ));
        }
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let Some(account_id) = self.account_id_for(&email).await? else {
            return Ok(());
        };
        let Some(key) = self.keys.get(account_id.0).await? else {
            return Ok(());
        };
        let sealed = key.seal(reason);
        let metadata = crate::accounts::metadata(ctx, Some(&key), None);
        let request_id = Uuid::now_v7();
        let committed = self
            .execute(
                account_id,
                || AccountCommand::RequestAccess {
                    request_id,
                    reason: sealed.clone(),
                },
                &metadata,
            )
            .await?;
        self.settle(&committed, false).await
    }

    pub async fn access_requests(
        &self,
        who: &Authenticated,
        status: Option<&str>,
    ) -> Result<Vec<AccessRequestRecord>, AppError> {
        self.require_admin(who).await?;
        let rows: Vec<AccessRequestRow> = sqlx::query_as(
            "SELECT request_id, account_id, reason, requested_at, status, decided_at
             FROM access_requests_v1
             WHERE $1::text IS NULL OR status = $1
             ORDER BY requested_at DESC LIMIT 500",
        )
        .bind(status)
        .fetch_all(&self.pool)
        .await?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let key = self.keys.get(row.account_id).await?;
            let reason = key
                .as_ref()
                .and_then(|k| k.open(&SealedText(row.reason.clone())).ok())
                .unwrap_or_else(|| "erased".into());
            let email = self
                .email_of(AccountId(row.account_id))
                .await
                .unwrap_or_else(|_| "erased".into());
            records.push(AccessRequestRecord {
                id: row.request_id,
                account_id: row.account_id,
                email,
                reason,
                requested_at: row.requested_at,
                status: row.status,
                decided_at: row.decided_at,
            });
        }
        Ok(records)
    }

    pub async fn decide_access_request(
        &self,
        who: &Authenticated,
        request_id: Uuid,
        approve: bool,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        self.require_admin(who).await?;
        let account_id: Option<Uuid> =
            sqlx::query_scalar("SELECT account_id FROM access_requests_v1 WHERE request_id = $1")
                .bind(request_id)
                .fetch_optional(&self.pool)
                .await?;
        let account_id = AccountId(account_id.ok_or_else(|| {
            AppError::rejected(
                ErrorKind::NotFound,
                "access_request_not_found",
                "no such open access request",
            )
        })?);
        let by = who.account_id;
        self.act(
            who,
            account_id,
            ctx,
            || AccountCommand::DecideAccessRequest {
                request_id,
                approve,
                by,
            },
            false,
        )
        .await
        .map(|_| ())
    }
}
