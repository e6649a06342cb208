//! Accounts: registration, the profile, changing the password, and resetting it by mail.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::account::{Account, AccountCommand, MfaMethod, Notice, PasswordCommand};
use warden_aggregates::shared::{AccountId, Email, WorkspaceId};
use warden_projections::queries;

use super::background::Background;
use super::command::{Commands, Settle};
use super::context::{metadata, Authenticated, RequestContext};
use super::credentials::workspaces_requiring_mfa;
use super::directory::Directory;
use super::error::AppError;
use super::mail_outbox::{reset_token, RESET_TOKEN_TTL_MINUTES};
use super::personal::Personal;
use super::problem::ProblemCode;
use crate::adapters::client_throttle::ClientThrottle;
use crate::adapters::password::Argon2Passwords;
use crate::adapters::sealing::DataKey;
use crate::adapters::tokens::{self, RESET_PREFIX};

pub struct Profile {
    pub id: Uuid,
    pub email: Personal,
    pub display_name: Option<Personal>,
    pub registered_at: Option<DateTime<Utc>>,
    pub mfa_methods: Vec<MfaMethod>,
    pub totp_pending: bool,
    pub recovery_codes_remaining: usize,
    pub is_admin: bool,
    pub is_auditor: bool,
    /// Workspaces of the account that require MFA.
    pub mfa_required_by: Vec<WorkspaceId>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Profile {
    /// The profile of `account`, its personal data opened with `key`.
    pub fn of(
        account: &Account,
        id: AccountId,
        key: Option<&DataKey>,
        mfa_required_by: Vec<WorkspaceId>,
    ) -> Self {
        let open = |sealed| Personal::open(key, sealed);
        Self {
            id: id.0,
            email: account.email().map_or(Personal::Erased, open),
            display_name: account.display_name().map(open),
            registered_at: account.registered_at(),
            mfa_methods: account
                .mfa_methods()
                .into_iter()
                .filter(|m| *m != MfaMethod::RecoveryCode)
                .collect(),
            totp_pending: account.totp_pending(),
            recovery_codes_remaining: account.recovery_codes_remaining(),
            is_admin: account.is_admin(),
            is_auditor: account.is_auditor(),
            mfa_required_by,
        }
    }
}

#[derive(Clone)]
pub struct Accounts {
    commands: Commands,
    directory: Directory,
    throttle: ClientThrottle,
    passwords: Argon2Passwords,
    pool: PgPool,
    background: Background,
}

impl Accounts {
    pub fn new(
        commands: Commands,
        directory: Directory,
        throttle: ClientThrottle,
        passwords: Argon2Passwords,
        pool: PgPool,
    ) -> Self {
        Self {
            commands,
            directory,
            throttle,
            passwords,
            pool,
            background: Background::default(),
        }
    }

    /// The throttle of unauthenticated attempts, shared with the support flow.
    pub fn throttle(&self) -> &ClientThrottle {
        &self.throttle
    }

    pub async fn register(
        &self,
        email: Email,
        password: SecretString,
        display_name: Option<String>,
        ctx: &RequestContext,
    ) -> Result<AccountId, AppError> {
        self.throttle.check(ctx.ip.as_deref())?;
        check_new_password(&password, &[email.as_str()])?;
        let password_hash = self
            .passwords
            .hash(&password)
            .await
            .map_err(AppError::internal)?;
        let account_id = AccountId(Uuid::now_v7());
        if !self.directory.claim(&email, account_id).await? {
            return Err(AppError::new(ProblemCode::EmailTaken));
        }
        let result = async {
            let key = self.directory.keys().create(account_id.0).await?;
            let sealed_email = key.seal(email.as_str());
            let sealed_name = display_name.as_deref().map(|n| key.seal(n));
            let metadata = metadata(ctx, Some(&key), Some(account_id));
            let command = || AccountCommand::Register {
                account_id,
                email: sealed_email.clone(),
                display_name: sealed_name.clone(),
                password_hash: password_hash.clone(),
            };
            let settle = Settle::Views;
            Ok::<_, AppError>(
                self.commands
                    .account(account_id, command, &metadata, settle)
                    .await?,
            )
        }
        .await;
        if let Err(error) = result {
            // Release the claim so the address is not lost to a failed registration.
            self.directory.abandon(account_id).await;
            return Err(error);
        }
        Ok(account_id)
    }

    /// The caller's profile: as its credential check found it, or read now.
    pub async fn profile(&self, who: &Authenticated) -> Result<Arc<Profile>, AppError> {
        who.require_read_of_own_account()?;
        if let Some(profile) = &who.profile {
            return Ok(profile.clone());
        }
        let account = self.commands.load_account(who.account_id).await?;
        let key = self.directory.key(who.account_id).await?;
        let required_by =
            workspaces_requiring_mfa(&self.commands, &self.pool, who.account_id).await?;
        Ok(Arc::new(Profile::of(
            &account,
            who.account_id,
            key.as_ref(),
            required_by,
        )))
    }

    /// Every security notice and whether the owner gets it.
    pub async fn notices(&self, who: &Authenticated) -> Result<Vec<(Notice, bool)>, AppError> {
        who.require_read_of_own_account()?;
        let account = self.commands.load_account(who.account_id).await?;
        Ok(Notice::ALL.map(|n| (n, account.wants(n))).to_vec())
    }

    /// Turns exactly the notices in `off` off. Only from a session: a token that could silence
    /// the notice of its own creation would hide what it is there to tell.
    pub async fn set_notices(
        &self,
        who: &Authenticated,
        off: BTreeSet<Notice>,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session()?;
        let command = || AccountCommand::SetNotices { off: off.clone() };
        self.commands
            .by(who, ctx, who.account_id, command, Settle::Views)
            .await?;
        Ok(())
    }

    pub async fn change_password(
        &self,
        who: &Authenticated,
        current: SecretString,
        new: SecretString,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session()?;
        check_new_password(&new, &[])?;
        let new_hash = self
            .passwords
            .hash(&new)
            .await
            .map_err(AppError::internal)?;
        let command = || PasswordCommand::Change {
            current_password: current.clone(),
            new_password_hash: new_hash.clone(),
            keep_session: who.session_id(),
        };
        let refused = ProblemCode::CurrentPasswordInvalid;
        self.commands
            .own(who, ctx, command, Settle::Revocation, refused)
            .await
            .map(|_| ())
    }

    /// Records a reset request if the address has an account; the mail outbox mails the link.
    /// Callers always answer 202, at once: the lookup and the command run after the answer, so
    /// that how long it takes tells nothing about the address (docs/adr/0018).
    pub fn request_password_reset(
        &self,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        self.throttle.check(ctx.ip.as_deref())?;
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let accounts = self.clone();
        let ctx = ctx.clone();
        self.background.spawn(async move {
            if let Err(error) = accounts.record_reset_request(&email, &ctx).await {
                tracing::error!(%error, request_id = %ctx.request_id, "password reset not recorded");
            }
        })
    }

    /// Work started by requests and not waited for.
    pub fn background(&self) -> &Background {
        &self.background
    }

    async fn record_reset_request(
        &self,
        email: &Email,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let Some(account_id) = self.directory.account_id_for(email).await? else {
            return Ok(());
        };
        let Some(key) = self.directory.key(account_id).await? else {
            return Ok(());
        };
        let mail_nonce = tokens::mint_nonce();
        let token = reset_token(self.directory.keys().master(), account_id, &mail_nonce);
        let token_hash = tokens::hash(token.expose_secret());
        let expires_at =
            self.commands.clock().now() + chrono::Duration::minutes(RESET_TOKEN_TTL_MINUTES);
        let metadata = metadata(ctx, Some(&key), None);
        // Asked again within the minute, the account records nothing: the earlier mail stands.
        let command = || {
            AccountCommand::from(PasswordCommand::RequestReset {
                token_hash: token_hash.clone(),
                expires_at,
                mail_nonce: mail_nonce.clone(),
            })
        };
        self.commands
            .account(account_id, command, &metadata, Settle::Views)
            .await?;
        Ok(())
    }

    pub async fn confirm_password_reset(
        &self,
        token: SecretString,
        new: SecretString,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let invalid = || AppError::new(ProblemCode::ResetTokenInvalid);
        let hash = tokens::hash_presented(&token, RESET_PREFIX).ok_or_else(invalid)?;
        let account_id = queries::credentials::reset_token_account(&self.pool, &hash.0)
            .await?
            .map(AccountId)
            .ok_or_else(invalid)?;
        check_new_password(&new, &[])?;
        let new_hash = self
            .passwords
            .hash(&new)
            .await
            .map_err(AppError::internal)?;
        let key = self.directory.key(account_id).await?;
        let metadata = metadata(ctx, key.as_ref(), None);
        let command = || {
            AccountCommand::from(PasswordCommand::Reset {
                token_hash: hash.clone(),
                new_password_hash: new_hash.clone(),
            })
        };
        self.commands
            .account(account_id, command, &metadata, Settle::Revocation)
            .await?;
        Ok(())
    }
}

/// The workspaces of `account_id` whose policy requires MFA.
/// NIST 800-63B: 8 to 128 characters, no composition rules, never truncated, and not guessable
/// (zxcvbn's frequency lists of common passwords, names and words, plus the user's own details).
pub fn check_new_password(password: &SecretString, user_inputs: &[&str]) -> Result<(), AppError> {
    let password = password.expose_secret();
    let length = password.chars().count();
    if length < 8 {
        return Err(AppError::new(ProblemCode::PasswordTooShort));
    }
    if length > 128 {
        return Err(AppError::new(ProblemCode::PasswordTooLong));
    }
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    if u8::from(estimate.score()) < 2 {
        return Err(AppError::new(ProblemCode::PasswordTooCommon));
    }
    Ok(())
}
