//! The account use cases: everything between a parsed HTTP request and the `Account` aggregate.
//! Here credentials are minted, personal data is sealed, the email reservation is claimed, the
//! command is executed, and the answer waits until the views it affects have caught up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::account::{
    Account, AccountCommand, AccountError, AccountEvent, AccountServices, AuthMethod, MfaMethod,
    NewSession, PasswordVerifier, SessionEndReason,
};
use warden_aggregates::shared::{
    AccountId, Clock, Email, ErrorKind, PasswordHash, Scope, SessionId, TokenId, WorkspaceId,
};
use warden_projections::{Cursor, Projections};

use crate::adapters::mail::{Mailer, OutgoingMail};
use crate::adapters::password::Argon2Passwords;
use crate::adapters::sealing::DataKey;
use crate::adapters::tokens::{self, API_PREFIX, CHALLENGE_PREFIX, RESET_PREFIX, SESSION_PREFIX};
use crate::adapters::totp::RfcTotp;
use crate::error::AppError;
use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimitInfo;
use crate::store::{Committed, EventStore, ExecuteError};

/// How long a state-changing request waits for the views it affects (read-your-writes).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
const RESET_TOKEN_TTL_MINUTES: i64 = 30;
/// `last_seen_at` is written at most this often per session.
const ACTIVITY_RESOLUTION_SECS: i64 = 60;

/// Who is asking and from where; travels into every event's metadata (personal parts sealed).
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A caller holding a live credential: a session, or an API access token with scopes.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub account_id: AccountId,
    pub credential: Credential,
    /// A workspace requires MFA and the account has none yet: only enrolment is open.
    pub enrolment_only: bool,
}

#[derive(Debug, Clone)]
pub enum Credential {
    Session(SessionId),
    ApiToken {
        token_id: TokenId,
        scopes: Vec<Scope>,
    },
}

impl Authenticated {
    pub fn session_id(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session(id) => Some(id),
            Credential::ApiToken { .. } => None,
        }
    }

    /// Sessions may do all their account may; a token only what its scopes allow.
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        self.not_enrolling()?;
        match &self.credential {
            Credential::Session(_) => Ok(()),
            Credential::ApiToken { scopes, .. } if scopes.contains(&scope) => Ok(()),
            Credential::ApiToken { .. } => Err(AppError::rejected(
                ErrorKind::Forbidden,
                "insufficient_scope",
                format!("this API token lacks the `{}` scope", scope.as_str()),
            )),
        }
    }

    fn not_enrolling(&self) -> Result<(), AppError> {
        if self.enrolment_only {
            return Err(AppError::rejected(
                ErrorKind::Forbidden,
                "mfa_enrollment_required",
                "a workspace of this account requires MFA: enrol a second factor first",
            ));
        }
        Ok(())
    }

    /// For what an API token may never do: mint tokens, change the password or MFA, set a PIN,
    /// log a session out.
    pub fn require_session(&self) -> Result<SessionId, AppError> {
        self.not_enrolling()?;
        self.require_session_while_enrolling()
    }

    /// For what an enrolment-only session may do: read the account, enrol a factor, log out.
    pub fn require_session_while_enrolling(&self) -> Result<SessionId, AppError> {
        self.session_id().ok_or_else(|| {
            AppError::rejected(
                ErrorKind::Forbidden,
                "session_required",
                "this requires a session; API tokens cannot do it",
            )
        })
    }
}

pub struct LoggedIn {
    pub token: SecretString,
    pub session_id: SessionId,
    pub expires_at: DateTime<Utc>,
}

/// What the password step of a login ends in.
pub enum LoginOutcome {
    Authenticated(LoggedIn),
    /// A workspace requires MFA and the account has no factor: a session that may only enrol.
    EnrolmentRequired(LoggedIn),
    /// A second factor is due: the challenge token is shown to the client once.
    MfaRequired {
        challenge: SecretString,
        methods: Vec<MfaMethod>,
        expires_at: DateTime<Utc>,
    },
}

pub struct Profile {
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    pub registered_at: Option<DateTime<Utc>>,
    pub mfa_methods: Vec<MfaMethod>,
    pub totp_pending: bool,
    pub recovery_codes_remaining: usize,
    pub is_admin: bool,
    /// Workspaces of the account that require MFA.
    pub mfa_required_by: Vec<WorkspaceId>,
}

pub struct SessionRecord {
    pub id: Uuid,
    pub device: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub method: String,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    pub current: bool,
}

pub struct FailedAttempt {
    pub at: DateTime<Utc>,
    pub purpose: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone)]
pub struct AccountsService {
    pub(crate) pool: PgPool,
    store: EventStore,
    pub(crate) keys: KeyRing,
    pub(crate) passwords: Argon2Passwords,
    services: Arc<AccountServices>,
    pub(crate) mailer: Arc<dyn Mailer>,
    projections: Arc<Projections>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Metrics,
    public_url: String,
    pub(crate) totp: Arc<RfcTotp>,
    pub(crate) totp_issuer: String,
}

pub struct AccountsDeps {
    pub pool: PgPool,
    pub keys: KeyRing,
    pub passwords: Argon2Passwords,
    pub services: Arc<AccountServices>,
    pub mailer: Arc<dyn Mailer>,
    pub projections: Arc<Projections>,
    pub metrics: Metrics,
    pub public_url: String,
    pub totp: Arc<RfcTotp>,
    pub totp_issuer: String,
}

impl AccountsService {
    pub fn new(deps: AccountsDeps) -> Self {
        Self {
            store: EventStore::new(deps.pool.clone()),
            pool: deps.pool,
            keys: deps.keys,
            passwords: deps.passwords,
            clock: deps.services.clock.clone(),
            services: deps.services,
            mailer: deps.mailer,
            projections: deps.projections,
            metrics: deps.metrics,
            public_url: deps.public_url,
            totp: deps.totp,
            totp_issuer: deps.totp_issuer,
        }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub async fn register(
        &self,
        email: Email,
        password: SecretString,
        display_name: Option<String>,
        ctx: &RequestContext,
    ) -> Result<AccountId, AppError> {
        check_new_password(&password, &[email.as_str()])?;
        let password_hash = self
            .passwords
            .hash(&password)
            .await
            .map_err(AppError::internal)?;
        let account_id = AccountId(Uuid::now_v7());
        let email_index = self.keys.master().email_index(email.as_str());
        if !self.claim_email(&email_index, account_id.0).await? {
            return Err(AppError::rejected(
                ErrorKind::Conflict,
                "email_taken",
                "an account with this email already exists",
            ));
        }
        let result = async {
            let key = self.keys.create(account_id.0).await?;
            let sealed_email = key.seal(email.as_str());
            let sealed_name = display_name.as_deref().map(|n| key.seal(n));
            let metadata = metadata(ctx, Some(&key), Some(account_id));
            self.execute(
                account_id,
                || AccountCommand::Register {
                    account_id,
                    email: sealed_email.clone(),
                    display_name: sealed_name.clone(),
                    password_hash: password_hash.clone(),
                },
                &metadata,
            )
            .await
        }
        .await;
        match result {
            Ok(committed) => {
                self.settle(&committed, false).await?;
                Ok(account_id)
            }
            Err(error) => {
                // Release the claim so the address is not lost to a failed registration.
                let _ = sqlx::query("DELETE FROM email_reservations WHERE account_id = $1")
                    .bind(account_id.0)
                    .execute(&self.pool)
                    .await;
                let _ = self.keys.discard(account_id.0).await;
                Err(error)
            }
        }
    }

    /// Claims `email_index` for `account_id`. A claim left behind by a registration that died
    /// before writing its first event is taken over after five minutes.
    async fn claim_email(&self, email_index: &str, account_id: Uuid) -> Result<bool, AppError> {
        let inserted = sqlx::query(
            "INSERT INTO email_reservations (email_hash, account_id) VALUES ($1, $2)
             ON CONFLICT (email_hash) DO NOTHING",
        )
        .bind(email_index)
        .bind(account_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(true);
        }
        let taken_over = sqlx::query(
            "UPDATE email_reservations r SET account_id = $2, claimed_at = now()
             WHERE r.email_hash = $1 AND r.claimed_at < now() - interval '5 minutes'
               AND NOT EXISTS (SELECT 1 FROM events e
                               WHERE e.aggregate_type = 'account'
                                 AND e.aggregate_id = r.account_id::text)",
        )
        .bind(email_index)
        .bind(account_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken_over == 1)
    }

    pub(crate) async fn account_id_for(
        &self,
        email: &Email,
    ) -> Result<Option<AccountId>, AppError> {
        let index = self.keys.master().email_index(email.as_str());
        let id: Option<Uuid> =
            sqlx::query_scalar("SELECT account_id FROM email_reservations WHERE email_hash = $1")
                .bind(index)
                .fetch_optional(&self.pool)
                .await?;
        Ok(id.map(AccountId))
    }

    pub async fn log_in(
        &self,
        email: &str,
        password: SecretString,
        device: Option<String>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, AppError> {
        let account_id = match Email::parse(email) {
            Ok(email) => self.account_id_for(&email).await?,
            Err(_) => None,
        };
        let key = match account_id {
            Some(id) => self.keys.get(id.0).await?,
            None => None,
        };
        let (Some(account_id), Some(key)) = (account_id, key) else {
            // Unknown accounts cost one verification too, so timing does not reveal them.
            self.passwords.verify_dummy(&password).await;
            return Err(AppError::invalid_credentials());
        };
        let (token, token_hash) = tokens::mint(SESSION_PREFIX);
        let (challenge, challenge_hash) = tokens::mint(CHALLENGE_PREFIX);
        let session = NewSession {
            session_id: SessionId(Uuid::now_v7()),
            token_hash,
            device: device.as_deref().map(|d| key.seal(d)),
            method: AuthMethod::Password,
        };
        let metadata = metadata(ctx, Some(&key), Some(account_id));
        let mfa_required_by = self.workspaces_requiring_mfa(account_id).await?;
        let committed = self
            .execute(
                account_id,
                || AccountCommand::LogIn {
                    password: password.clone(),
                    session: session.clone(),
                    challenge_hash: challenge_hash.clone(),
                    mfa_required_by: mfa_required_by.clone(),
                },
                &metadata,
            )
            .await
            .map_err(|e| match e {
                AppError::Rejected {
                    code: "account_not_found",
                    ..
                } => AppError::invalid_credentials(),
                other => other,
            })?;
        self.settle(&committed, false).await?;
        let challenged = committed.events.iter().find_map(|e| match e {
            AccountEvent::MfaChallengeIssued {
                methods,
                expires_at,
                ..
            } => Some((methods.clone(), *expires_at)),
            _ => None,
        });
        if let Some((methods, expires_at)) = challenged {
            return Ok(LoginOutcome::MfaRequired {
                challenge,
                methods,
                expires_at,
            });
        }
        let enrolment_only = committed.events.iter().any(|e| {
            matches!(
                e,
                AccountEvent::SessionStarted {
                    enrolment_only: true,
                    ..
                }
            )
        });
        let logged_in =
            started_session(&committed.events, token).ok_or_else(AppError::invalid_credentials)?;
        Ok(if enrolment_only {
            LoginOutcome::EnrolmentRequired(logged_in)
        } else {
            LoginOutcome::Authenticated(logged_in)
        })
    }

    /// The workspaces of `account_id` whose policy requires MFA.
    pub(crate) async fn workspaces_requiring_mfa(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<WorkspaceId>, AppError> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT w.workspace_id FROM workspace_members_v1 m
             JOIN workspaces_v1 w ON w.workspace_id = m.workspace_id
             WHERE m.account_id = $1 AND w.mfa_required
             ORDER BY w.workspace_id",
        )
        .bind(account_id.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(WorkspaceId).collect())
    }

    /// The caller behind a bearer token (a session or an API token), or a 401. Token requests
    /// also take a rate-limit slot; its state comes back for the response headers.
    pub async fn authenticate(
        &self,
        token: &SecretString,
        ctx: &RequestContext,
    ) -> Result<(Authenticated, Option<RateLimitInfo>), AppError> {
        if token.expose_secret().starts_with(API_PREFIX) {
            let (who, info) = self.authenticate_api_token(token, ctx).await?;
            return Ok((who, Some(info)));
        }
        Ok((self.authenticate_session(token).await?, None))
    }

    async fn authenticate_session(&self, token: &SecretString) -> Result<Authenticated, AppError> {
        let Some(hash) = tokens::hash_presented(token, SESSION_PREFIX) else {
            return Err(AppError::unauthenticated());
        };
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT c.session_id, c.account_id, c.expires_at, c.idle_timeout_secs, c.ended_at,
                    c.enrolment_only, COALESCE(a.last_seen_at, c.started_at) AS last_seen_at
             FROM session_credentials_v1 c
             LEFT JOIN session_activity a ON a.session_id = c.session_id
             WHERE c.token_hash = $1",
        )
        .bind(&hash.0)
        .fetch_optional(&self.pool)
        .await?;
        let now = self.clock.now();
        let Some(row) = row.filter(|r| r.is_live(now)) else {
            return Err(AppError::unauthenticated());
        };
        if (now - row.last_seen_at).num_seconds() >= ACTIVITY_RESOLUTION_SECS {
            sqlx::query(
                "INSERT INTO session_activity (session_id, last_seen_at) VALUES ($1, $2)
                 ON CONFLICT (session_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
                 WHERE session_activity.last_seen_at < EXCLUDED.last_seen_at",
            )
            .bind(row.session_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        }
        Ok(Authenticated {
            account_id: AccountId(row.account_id),
            credential: Credential::Session(SessionId(row.session_id)),
            enrolment_only: row.enrolment_only,
        })
    }

    /// The account's email address, opened with its key.
    pub(crate) async fn email_of(&self, account_id: AccountId) -> Result<String, AppError> {
        let (account, _) = self
            .store
            .load::<Account>(&account_id.to_string())
            .await
            .map_err(AppError::from)?;
        let key = self.keys.get(account_id.0).await?;
        open(key.as_ref(), account.email.as_ref())
            .filter(|e| e != "erased")
            .ok_or_else(|| AppError::not_found("the account has no address to mail"))
    }

    pub async fn profile(&self, who: &Authenticated) -> Result<Profile, AppError> {
        if who.enrolment_only {
            who.require_session_while_enrolling()?;
        } else {
            who.require(Scope::Read)?;
        }
        let (account, _) = self
            .store
            .load::<Account>(&who.account_id.to_string())
            .await
            .map_err(AppError::from)?;
        let key = self.keys.get(who.account_id.0).await?;
        Ok(Profile {
            id: who.account_id.0,
            email: open(key.as_ref(), account.email.as_ref()).unwrap_or_else(erased),
            display_name: open(key.as_ref(), account.display_name.as_ref()),
            registered_at: account.registered_at,
            mfa_methods: account
                .mfa_methods()
                .into_iter()
                .filter(|m| *m != MfaMethod::RecoveryCode)
                .collect(),
            totp_pending: account.totp_pending(),
            recovery_codes_remaining: account.recovery_codes_remaining(),
            is_admin: account.is_admin,
            mfa_required_by: self.workspaces_requiring_mfa(who.account_id).await?,
        })
    }

    pub async fn log_out(&self, who: &Authenticated, ctx: &RequestContext) -> Result<(), AppError> {
        let session_id = who.require_session_while_enrolling()?;
        let reason = SessionEndReason::LoggedOut;
        let command = || AccountCommand::EndSession { session_id, reason };
        self.act(who, who.account_id, ctx, command, true)
            .await
            .map(|_| ())
    }

    pub async fn end_session(
        &self,
        who: &Authenticated,
        session_id: SessionId,
        reason: SessionEndReason,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require(Scope::Write)?;
        self.act(
            who,
            who.account_id,
            ctx,
            || AccountCommand::EndSession { session_id, reason },
            true,
        )
        .await
        .map(|_| ())
    }

    /// Logs out of every device, the caller's included. Answers how many sessions ended.
    pub async fn revoke_all(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<usize, AppError> {
        who.require(Scope::Write)?;
        let committed = self
            .act(
                who,
                who.account_id,
                ctx,
                || AccountCommand::RevokeAllSessions {
                    reason: SessionEndReason::RevokedAll,
                },
                true,
            )
            .await?;
        Ok(committed.events.len())
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
        let committed = self
            .act(
                who,
                who.account_id,
                ctx,
                || AccountCommand::ChangePassword {
                    current_password: current.clone(),
                    new_password_hash: new_hash.clone(),
                    keep_session: who.session_id(),
                },
                true,
            )
            .await?;
        let changed = committed
            .events
            .iter()
            .any(|e| matches!(e, AccountEvent::PasswordChanged { .. }));
        if changed {
            Ok(())
        } else {
            Err(AppError::rejected(
                ErrorKind::Forbidden,
                "current_password_invalid",
                "the current password is wrong",
            ))
        }
    }

    /// Mails a single-use reset link if the account exists. Callers always answer 202.
    pub async fn request_password_reset(
        &self,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let Some(account_id) = self.account_id_for(&email).await? else {
            return Ok(());
        };
        let Some(key) = self.keys.get(account_id.0).await? else {
            return Ok(());
        };
        let (token, token_hash) = tokens::mint(RESET_PREFIX);
        let expires_at = self.clock.now() + chrono::Duration::minutes(RESET_TOKEN_TTL_MINUTES);
        let metadata = metadata(ctx, Some(&key), None);
        let committed = self
            .execute(
                account_id,
                || AccountCommand::RequestPasswordReset {
                    token_hash: token_hash.clone(),
                    expires_at,
                },
                &metadata,
            )
            .await?;
        self.settle(&committed, false).await?;
        if committed.events.is_empty() {
            // Asked again within the minute: the earlier mail stands.
            return Ok(());
        }
        let link = format!(
            "{}/reset-password?token={}",
            self.public_url.trim_end_matches('/'),
            token.expose_secret()
        );
        let mail = OutgoingMail {
            to: email.as_str().to_string(),
            subject: "Reset your Warden password".into(),
            body: format!(
                "Someone asked to reset the password of this account.\r\n\r\n\
                 To choose a new password, open this link within {RESET_TOKEN_TTL_MINUTES} minutes:\r\n\
                 {link}\r\n\r\n\
                 If it was not you, ignore this message; your password stays as it is.\r\n"
            ),
        };
        if let Err(error) = self.mailer.send(mail).await {
            tracing::error!(%error, request_id = %ctx.request_id, "password reset mail not sent");
        } else {
            tracing::info!(request_id = %ctx.request_id, "password reset mail sent");
        }
        Ok(())
    }

    pub async fn confirm_password_reset(
        &self,
        token: SecretString,
        new: SecretString,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let invalid = || AppError::from_account(AccountError::ResetTokenInvalid, Utc::now());
        let hash = tokens::hash_presented(&token, RESET_PREFIX).ok_or_else(invalid)?;
        let account_id: Option<Uuid> =
            sqlx::query_scalar("SELECT account_id FROM reset_tokens_v1 WHERE token_hash = $1")
                .bind(&hash.0)
                .fetch_optional(&self.pool)
                .await?;
        let account_id = AccountId(account_id.ok_or_else(invalid)?);
        check_new_password(&new, &[])?;
        let new_hash = self
            .passwords
            .hash(&new)
            .await
            .map_err(AppError::internal)?;
        let key = self.keys.get(account_id.0).await?;
        let metadata = metadata(ctx, key.as_ref(), None);
        let committed = self
            .execute(
                account_id,
                || AccountCommand::ResetPassword {
                    token_hash: hash.clone(),
                    new_password_hash: new_hash.clone(),
                },
                &metadata,
            )
            .await?;
        self.settle(&committed, true).await
    }

    pub async fn sessions(
        &self,
        who: &Authenticated,
    ) -> Result<(Vec<SessionRecord>, Vec<FailedAttempt>), AppError> {
        who.require(Scope::Read)?;
        let key = self.keys.get(who.account_id.0).await?;
        let rows: Vec<HistoryRow> = sqlx::query_as(
            "SELECT h.session_id, h.device, h.ip, h.user_agent, h.method, h.started_at,
                    h.expires_at, h.idle_timeout_secs, h.ended_at, h.end_reason,
                    COALESCE(a.last_seen_at, h.started_at) AS last_seen_at
             FROM session_history_v1 h
             LEFT JOIN session_activity a ON a.session_id = h.session_id
             WHERE h.account_id = $1
             ORDER BY h.started_at DESC, h.session_id DESC
             LIMIT 200",
        )
        .bind(who.account_id.0)
        .fetch_all(&self.pool)
        .await?;
        let now = self.clock.now();
        let sessions = rows
            .into_iter()
            .map(|row| {
                // Sessions that timed out were never ended by an event; show when and why.
                let idle_end = row.last_seen_at + chrono::Duration::seconds(row.idle_timeout_secs);
                let timed_out = if idle_end < row.expires_at {
                    (idle_end, "idle_timeout")
                } else {
                    (row.expires_at, "expired")
                };
                // A session that timed out before an event ended it (an expiry swept at a later
                // login, a revocation of a long-idle session) shows when it really stopped.
                let (ended_at, end_reason) = match (row.ended_at, row.end_reason) {
                    (Some(at), reason) if at <= timed_out.0 => (Some(at), reason),
                    _ if timed_out.0 <= now => (Some(timed_out.0), Some(timed_out.1.to_string())),
                    (ended_at, reason) => (ended_at, reason),
                };
                SessionRecord {
                    id: row.session_id,
                    device: row.device.and_then(|d| open_raw(key.as_ref(), d)),
                    ip: row.ip.and_then(|d| open_raw(key.as_ref(), d)),
                    user_agent: row.user_agent.and_then(|d| open_raw(key.as_ref(), d)),
                    method: row.method,
                    started_at: row.started_at,
                    last_seen_at: row.last_seen_at,
                    expires_at: row.expires_at,
                    current: Some(SessionId(row.session_id)) == who.session_id(),
                    ended_at,
                    end_reason,
                }
            })
            .collect();
        let failures: Vec<FailureRow> = sqlx::query_as(
            "SELECT at, purpose, ip, user_agent FROM login_failures_v1
             WHERE account_id = $1 ORDER BY at DESC, global_position DESC LIMIT 100",
        )
        .bind(who.account_id.0)
        .fetch_all(&self.pool)
        .await?;
        let failures = failures
            .into_iter()
            .map(|f| FailedAttempt {
                at: f.at,
                purpose: f.purpose,
                ip: f.ip.and_then(|d| open_raw(key.as_ref(), d)),
                user_agent: f.user_agent.and_then(|d| open_raw(key.as_ref(), d)),
            })
            .collect();
        Ok((sessions, failures))
    }

    pub(crate) async fn metadata_for(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<HashMap<String, String>, AppError> {
        let key = self.keys.get(who.account_id.0).await?;
        let mut metadata = metadata(ctx, key.as_ref(), Some(who.account_id));
        match &who.credential {
            Credential::Session(id) => {
                metadata.insert("auth_method".into(), "session".into());
                metadata.insert("session_id".into(), id.to_string());
            }
            Credential::ApiToken { token_id, .. } => {
                metadata.insert("auth_method".into(), "api_token".into());
                metadata.insert("api_token_id".into(), token_id.to_string());
            }
        }
        Ok(metadata)
    }

    /// Executes `command` on `target` on behalf of `who` (request metadata sealed under the
    /// caller's key) and waits for the views; see `settle` for `must`.
    pub(crate) async fn act(
        &self,
        who: &Authenticated,
        target: AccountId,
        ctx: &RequestContext,
        command: impl Fn() -> AccountCommand,
        must: bool,
    ) -> Result<Committed<Account>, AppError> {
        let metadata = self.metadata_for(who, ctx).await?;
        let committed = self.execute(target, command, &metadata).await?;
        self.settle(&committed, must).await?;
        Ok(committed)
    }

    /// `act` on the caller's own account for a command that records a refusal (a wrong password
    /// or code) instead of failing: answers `refused()` unless an event `wanted` was committed.
    pub(crate) async fn act_expecting(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        command: impl Fn() -> AccountCommand,
        wanted: fn(&AccountEvent) -> bool,
        refused: fn() -> AppError,
    ) -> Result<Committed<Account>, AppError> {
        let committed = self.act(who, who.account_id, ctx, command, false).await?;
        if committed.events.iter().any(wanted) {
            Ok(committed)
        } else {
            Err(refused())
        }
    }

    pub(crate) async fn execute(
        &self,
        account_id: AccountId,
        command: impl Fn() -> AccountCommand,
        metadata: &HashMap<String, String>,
    ) -> Result<Committed<Account>, AppError> {
        // Retries after a lost race re-run the command; the argon2 verdict for an unchanged hash
        // is remembered so a retry costs milliseconds, not another verification.
        let services = AccountServices {
            clock: self.services.clock.clone(),
            passwords: Arc::new(RememberedVerdicts::new(self.services.passwords.clone())),
            totp: self.services.totp.clone(),
            policy: self.services.policy.clone(),
        };
        let result = self
            .store
            .execute::<Account>(&account_id.to_string(), command, &services, metadata)
            .await;
        let outcome = match &result {
            Ok(_) => "committed",
            Err(ExecuteError::Domain(_)) => "refused",
            Err(ExecuteError::Store(_)) => "failed",
        };
        self.metrics.command(Account::TYPE_NAME, outcome);
        result.map_err(|e| match e {
            ExecuteError::Domain(error) => AppError::from_account(error, self.clock.now()),
            ExecuteError::Store(error) => AppError::from(error),
        })
    }

    /// Waits until every view reflects `committed`. When `must` (a revocation), a view that does
    /// not catch up in time turns the answer into a 503: the change is recorded, but the caller
    /// must not be told it is effective everywhere.
    pub(crate) async fn settle<A: cqrs_es::Aggregate>(
        &self,
        committed: &Committed<A>,
        must: bool,
    ) -> Result<(), AppError> {
        let Some(position) = committed.position else {
            return Ok(());
        };
        self.projections.wake();
        let types: Vec<String> = committed
            .events
            .iter()
            .map(cqrs_es::DomainEvent::event_type)
            .collect();
        if self
            .projections
            .wait_for_views_of(position, Some(&types), SETTLE_TIMEOUT)
            .await
        {
            return Ok(());
        }
        tracing::warn!(%position, "views did not catch up in time");
        if must {
            return Err(AppError::Unavailable {
                code: "views_lagging",
                detail: "the change is recorded but not yet effective everywhere; retry shortly"
                    .into(),
            });
        }
        Ok(())
    }

    /// Position of the newest event, for tests and benchmarks that wait on views.
    pub async fn head(&self) -> Result<Option<Cursor>, AppError> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT transaction_id::text, global_position FROM events
             ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(tx, pos)| {
            Some(Cursor {
                transaction_id: tx.parse().ok()?,
                global_position: pos,
            })
        }))
    }
}

/// Remembers verification verdicts for the duration of one command execution.
struct RememberedVerdicts {
    inner: Arc<dyn PasswordVerifier>,
    verdicts: std::sync::Mutex<Vec<(PasswordHash, bool)>>,
}

impl RememberedVerdicts {
    fn new(inner: Arc<dyn PasswordVerifier>) -> Self {
        Self {
            inner,
            verdicts: std::sync::Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl PasswordVerifier for RememberedVerdicts {
    // One command checks one candidate, so the hash alone identifies a verdict.
    async fn verify(&self, hash: &PasswordHash, candidate: &SecretString) -> bool {
        let known = self
            .verdicts
            .lock()
            .ok()
            .and_then(|v| v.iter().find(|(h, _)| h == hash).map(|(_, ok)| *ok));
        if let Some(verdict) = known {
            return verdict;
        }
        let verdict = self.inner.verify(hash, candidate).await;
        if let Ok(mut verdicts) = self.verdicts.lock() {
            verdicts.push((hash.clone(), verdict));
        }
        verdict
    }
}

trait TypeName {
    const TYPE_NAME: &'static str;
}

impl TypeName for Account {
    const TYPE_NAME: &'static str = "account";
}

/// The session a command started, with the token minted for it.
pub(crate) fn started_session(events: &[AccountEvent], token: SecretString) -> Option<LoggedIn> {
    events.iter().find_map(|e| match e {
        AccountEvent::SessionStarted {
            session_id,
            expires_at,
            ..
        } => Some(LoggedIn {
            token: token.clone(),
            session_id: *session_id,
            expires_at: *expires_at,
        }),
        _ => None,
    })
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    session_id: Uuid,
    account_id: Uuid,
    expires_at: DateTime<Utc>,
    idle_timeout_secs: i64,
    ended_at: Option<DateTime<Utc>>,
    enrolment_only: bool,
    last_seen_at: DateTime<Utc>,
}

impl SessionRow {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none()
            && now < self.expires_at
            && now < self.last_seen_at + chrono::Duration::seconds(self.idle_timeout_secs)
    }
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    session_id: Uuid,
    device: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    method: String,
    started_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    idle_timeout_secs: i64,
    ended_at: Option<DateTime<Utc>>,
    end_reason: Option<String>,
    last_seen_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct FailureRow {
    at: DateTime<Utc>,
    purpose: String,
    ip: Option<String>,
    user_agent: Option<String>,
}

/// Event metadata: the request id and actor in the clear, IP and user agent sealed under the
/// subject account's key.
pub(crate) fn metadata(
    ctx: &RequestContext,
    key: Option<&DataKey>,
    actor: Option<AccountId>,
) -> HashMap<String, String> {
    let mut metadata = HashMap::new();
    metadata.insert("request_id".into(), ctx.request_id.clone());
    metadata.insert(
        "actor".into(),
        actor.map_or_else(|| "anonymous".to_string(), |a| a.to_string()),
    );
    if let Some(key) = key {
        if let Some(ip) = &ctx.ip {
            metadata.insert("ip".into(), key.seal(ip).0);
        }
        if let Some(ua) = &ctx.user_agent {
            metadata.insert("user_agent".into(), key.seal(ua).0);
        }
    }
    metadata
}

fn open(
    key: Option<&DataKey>,
    sealed: Option<&warden_aggregates::shared::SealedText>,
) -> Option<String> {
    let sealed = sealed?;
    Some(match key {
        Some(key) => key.open(sealed).unwrap_or_else(|_| erased()),
        None => erased(),
    })
}

fn open_raw(key: Option<&DataKey>, sealed: String) -> Option<String> {
    open(key, Some(&warden_aggregates::shared::SealedText(sealed)))
}

fn erased() -> String {
    "erased".to_string()
}

/// NIST 800-63B: 8 to 128 characters, no composition rules, never truncated, and not guessable
/// (zxcvbn's frequency lists of common passwords, names and words, plus the user's own details).
pub fn check_new_password(password: &SecretString, user_inputs: &[&str]) -> Result<(), AppError> {
    let password = password.expose_secret();
    let length = password.chars().count();
    if length < 8 {
        return Err(AppError::invalid(
            "password_too_short",
            "a password needs at least 8 characters",
        ));
    }
    if length > 128 {
        return Err(AppError::invalid(
            "password_too_long",
            "a password has at most 128 characters",
        ));
    }
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    if u8::from(estimate.score()) < 2 {
        return Err(AppError::invalid(
            "password_too_common",
            "this password is too common or too easy to guess",
        ));
    }
    Ok(())
}
