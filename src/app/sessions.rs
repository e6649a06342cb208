//! Sessions: the password step of a login, logging out, ending one session or all of them, and
//! the "login security" list of sessions and failed attempts.

use std::time::Instant;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::account::{
    AccountCommand, AuthMethod, MfaMethod, NewSession, Outcome, SessionCommand, SessionEndReason,
};
use warden_aggregates::shared::{AccountId, Scope, SessionId};
use warden_projections::queries;

use super::answer_time::AnswerTimes;
use super::command::{Commands, Settle};
use super::context::{device_hash, metadata, Authenticated, RequestContext};
use super::credentials::activity::Activity;
use super::credentials::workspaces_requiring_mfa;
use super::directory::Directory;
use super::error::AppError;
use super::personal::Personal;
use super::problem::ProblemCode;
use crate::adapters::client_throttle::ClientThrottle;
use crate::adapters::password::Argon2Passwords;
use crate::adapters::tokens::{self, CHALLENGE_PREFIX, SESSION_PREFIX};

/// Mints a session token for `account_id`, runs the command `step` makes around the session it
/// would start (the account sets its method), and answers with the session if it was started.
/// `unknown` answers a refusal that must tell no more (an unknown challenge), `refused` a check
/// the account recorded as failed.
pub(super) async fn sign_in_step(
    commands: &Commands,
    directory: &Directory,
    account_id: AccountId,
    ctx: &RequestContext,
    step: impl Fn(NewSession) -> AccountCommand,
    (unknown, refused): (ProblemCode, ProblemCode),
) -> Result<LoggedIn, AppError> {
    let (token, token_hash) = tokens::mint(SESSION_PREFIX);
    let session = NewSession {
        session_id: SessionId(Uuid::now_v7()),
        token_hash,
        device: None,
        method: AuthMethod::Password,
        sso: None,
        device_hash: device_hash(directory.keys().master(), account_id, ctx),
    };
    let key = directory.key(account_id).await?;
    let metadata = metadata(ctx, key.as_ref(), Some(account_id));
    let command = || step(session.clone());
    let committed = commands
        .account(account_id, command, &metadata, Settle::Views)
        .await
        .map_err(|e| e.as_unknown(unknown))?;
    match Outcome::of(&committed.events) {
        Outcome::Authenticated {
            session_id,
            expires_at,
        } => Ok(LoggedIn {
            token,
            session_id,
            expires_at,
        }),
        _ => Err(AppError::new(refused)),
    }
}

/// Sessions and failed attempts the list shows at most.
const LISTED_SESSIONS: i64 = 200;
const LISTED_FAILURES: i64 = 100;

pub struct LoggedIn {
    pub token: SecretString,
    pub session_id: SessionId,
    pub expires_at: DateTime<Utc>,
}

/// What the password step of a login ends in.
pub enum LoginOutcome {
    Authenticated(LoggedIn),
    /// A workspace requires MFA and the account has no factor: a session that may only enroll.
    EnrollmentRequired(LoggedIn),
    /// A second factor is due: the challenge token is shown to the client once.
    MfaRequired {
        challenge: SecretString,
        methods: Vec<MfaMethod>,
        expires_at: DateTime<Utc>,
    },
}

impl LoginOutcome {
    /// What a login command's outcome tells the client; `None` when no session or challenge
    /// resulted (a wrong password).
    fn of(outcome: Outcome, token: SecretString, challenge: SecretString) -> Option<Self> {
        let logged_in = |session_id, expires_at| LoggedIn {
            token,
            session_id,
            expires_at,
        };
        match outcome {
            Outcome::Authenticated {
                session_id,
                expires_at,
            } => Some(Self::Authenticated(logged_in(session_id, expires_at))),
            Outcome::EnrollmentOnly {
                session_id,
                expires_at,
            } => Some(Self::EnrollmentRequired(logged_in(session_id, expires_at))),
            Outcome::Challenged {
                methods,
                expires_at,
            } => Some(Self::MfaRequired {
                challenge,
                methods,
                expires_at,
            }),
            _ => None,
        }
    }
}

pub struct SessionEntry {
    pub id: Uuid,
    pub device: Option<Personal>,
    pub ip: Option<Personal>,
    pub user_agent: Option<Personal>,
    pub method: String,
    /// The identity provider of a sign-in through one, as recorded.
    pub provider: Option<serde_json::Value>,
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
    pub ip: Option<Personal>,
    pub user_agent: Option<Personal>,
}

#[derive(Clone)]
pub struct Sessions {
    commands: Commands,
    directory: Directory,
    throttle: ClientThrottle,
    passwords: Argon2Passwords,
    activity: Activity,
    pool: PgPool,
    wrong_passwords: AnswerTimes,
}

impl Sessions {
    pub fn new(
        commands: Commands,
        directory: Directory,
        throttle: ClientThrottle,
        passwords: Argon2Passwords,
        activity: Activity,
        pool: PgPool,
    ) -> Self {
        Self {
            commands,
            directory,
            throttle,
            passwords,
            activity,
            pool,
            wrong_passwords: AnswerTimes::default(),
        }
    }

    pub async fn log_in(
        &self,
        email: &str,
        password: SecretString,
        device: Option<String>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, AppError> {
        self.throttle.check(ctx.ip.as_deref())?;
        let started = Instant::now();
        let account_id = self.directory.find(email).await?;
        let key = match account_id {
            Some(id) => self.directory.key(id).await?,
            None => None,
        };
        let (Some(account_id), Some(key)) = (account_id, key) else {
            // Unknown accounts cost one verification too, and then as long as a wrong password
            // for a known account takes these days, so timing does not reveal them.
            self.passwords.verify_dummy(&password).await;
            self.wrong_passwords.pad(started).await;
            return Err(AppError::new(ProblemCode::InvalidCredentials));
        };
        let (token, token_hash) = tokens::mint(SESSION_PREFIX);
        let (challenge, challenge_hash) = tokens::mint(CHALLENGE_PREFIX);
        let session = NewSession {
            session_id: SessionId(Uuid::now_v7()),
            token_hash,
            device: device.as_deref().map(|d| key.seal(d)),
            method: AuthMethod::Password,
            sso: None,
            device_hash: device_hash(self.directory.keys().master(), account_id, ctx),
        };
        let metadata = metadata(ctx, Some(&key), Some(account_id));
        let mfa_required_by =
            workspaces_requiring_mfa(&self.commands, &self.pool, account_id).await?;
        let command = || {
            AccountCommand::from(SessionCommand::LogIn {
                password: password.clone(),
                session: session.clone(),
                challenge_hash: challenge_hash.clone(),
                mfa_required_by: mfa_required_by.clone(),
            })
        };
        let outcome = self
            .commands
            .account(account_id, command, &metadata, Settle::UnlessFailed)
            .await
            .map_err(|e| e.as_unknown(ProblemCode::InvalidCredentials))
            .and_then(|committed| {
                LoginOutcome::of(Outcome::of(&committed.events), token, challenge)
                    .ok_or_else(|| AppError::new(ProblemCode::InvalidCredentials))
            });
        if outcome
            .as_ref()
            .is_err_and(|e| e.code() == ProblemCode::InvalidCredentials)
        {
            self.wrong_passwords.record(started);
        }
        outcome
    }

    pub async fn log_out(&self, who: &Authenticated, ctx: &RequestContext) -> Result<(), AppError> {
        let session_id = who.require_session_while_enrolling()?;
        self.end(who, session_id, SessionEndReason::LoggedOut, ctx)
            .await
    }

    pub async fn end_session(
        &self,
        who: &Authenticated,
        session_id: SessionId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require(Scope::Write)?;
        self.end(who, session_id, SessionEndReason::Revoked, ctx)
            .await
    }

    async fn end(
        &self,
        who: &Authenticated,
        session_id: SessionId,
        reason: SessionEndReason,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let command = || AccountCommand::from(SessionCommand::End { session_id, reason });
        self.commands
            .by(who, ctx, who.account_id, command, Settle::Revocation)
            .await?;
        Ok(())
    }

    /// Logs out of every device, the caller's included. Answers how many sessions ended.
    pub async fn revoke_all(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<usize, AppError> {
        who.require(Scope::Write)?;
        let reason = SessionEndReason::RevokedAll;
        let command = || AccountCommand::from(SessionCommand::EndAll { reason });
        let committed = self
            .commands
            .by(who, ctx, who.account_id, command, Settle::Revocation)
            .await?;
        Ok(committed.events.len())
    }

    /// Current and ended sessions, newest first, and the failed attempts.
    pub async fn list(
        &self,
        who: &Authenticated,
    ) -> Result<(Vec<SessionEntry>, Vec<FailedAttempt>), AppError> {
        who.require(Scope::Read)?;
        let key = self.directory.key(who.account_id).await?;
        let open = |sealed: Option<String>| sealed.map(|s| Personal::open_text(key.as_ref(), s));
        let now = self.commands.clock().now();
        let rows =
            queries::session_history::sessions_of(&self.pool, who.account_id.0, LISTED_SESSIONS)
                .await?;
        let sessions = rows
            .into_iter()
            .map(|mut row| {
                // Seen here more recently than written down yet.
                if let Some(seen) = self.activity.unwritten(row.session_id) {
                    row.lifetime.last_seen_at = row.lifetime.last_seen_at.max(seen);
                }
                // A session that timed out before an event ended it (an expiry swept at a later
                // login, a revocation of a long-idle session) shows when it really stopped.
                let (times_out_at, why) = row.lifetime.times_out_at();
                let (ended_at, end_reason) = match (row.lifetime.ended_at, row.end_reason) {
                    (Some(at), reason) if at <= times_out_at => (Some(at), reason),
                    _ if !row.lifetime.is_live(now) => {
                        (Some(times_out_at), Some(why.as_str().to_string()))
                    }
                    (ended_at, reason) => (ended_at, reason),
                };
                SessionEntry {
                    id: row.session_id,
                    device: open(row.device),
                    ip: open(row.ip),
                    user_agent: open(row.user_agent),
                    method: row.method,
                    provider: row.provider,
                    started_at: row.started_at,
                    last_seen_at: row.lifetime.last_seen_at,
                    expires_at: row.lifetime.expires_at,
                    current: Some(SessionId(row.session_id)) == who.session_id(),
                    ended_at,
                    end_reason,
                }
            })
            .collect();
        let failures =
            queries::session_history::failures_of(&self.pool, who.account_id.0, LISTED_FAILURES)
                .await?
                .into_iter()
                .map(|f| FailedAttempt {
                    at: f.at,
                    purpose: f.purpose,
                    ip: open(f.ip),
                    user_agent: open(f.user_agent),
                })
                .collect();
        Ok((sessions, failures))
    }
}
