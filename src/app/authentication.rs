//! Who is behind a bearer token: a live session, or a live API token (which also takes a slot of
//! its rate limit and records its first use, expiry and refusals as events).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use warden_aggregates::account::{AccountCommand, ApiTokenCommand};
use warden_aggregates::shared::{AccountId, Clock, Scope, SessionId, TokenId};
use warden_projections::queries::credentials::{self, ApiTokenRecord};

use super::command::{Commands, Settle};
use super::context::{metadata, Authenticated, Credential, RequestContext};
use super::directory::Directory;
use super::error::AppError;
use crate::adapters::rate_limit::{self, Decision, RateLimitInfo};
use crate::adapters::tokens::{self, API_PREFIX, SESSION_PREFIX};

/// `last_seen_at` of a session and `last_used_at` of a token are written at most this often.
const ACTIVITY_RESOLUTION_SECS: i64 = 60;

#[derive(Clone)]
pub struct Authentication {
    commands: Commands,
    directory: Directory,
    pool: PgPool,
    clock: Arc<dyn Clock>,
}

impl Authentication {
    pub fn new(commands: Commands, directory: Directory, pool: PgPool) -> Self {
        Self {
            clock: commands.clock().clone(),
            commands,
            directory,
            pool,
        }
    }

    /// The caller behind a bearer token, or a 401. Token requests also take a rate-limit slot;
    /// its state comes back for the response headers.
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
        let hash =
            tokens::hash_presented(token, SESSION_PREFIX).ok_or_else(AppError::unauthenticated)?;
        let now = self.clock.now();
        let session = credentials::session_by_token(&self.pool, &hash.0)
            .await?
            .filter(|s| s.lifetime.is_live(now))
            .ok_or_else(AppError::unauthenticated)?;
        if (now - session.lifetime.last_seen_at).num_seconds() >= ACTIVITY_RESOLUTION_SECS {
            credentials::touch_session(&self.pool, session.session_id, now).await?;
        }
        Ok(Authenticated {
            account_id: AccountId(session.account_id),
            credential: Credential::Session(SessionId(session.session_id)),
            enrollment_only: session.enrollment_only,
        })
    }

    /// The account behind a `wat_` token, after taking one slot of its rate limit.
    async fn authenticate_api_token(
        &self,
        token: &SecretString,
        ctx: &RequestContext,
    ) -> Result<(Authenticated, RateLimitInfo), AppError> {
        let hash =
            tokens::hash_presented(token, API_PREFIX).ok_or_else(AppError::unauthenticated)?;
        let row = credentials::api_token_by_hash(&self.pool, &hash.0)
            .await?
            .filter(|r| r.revoked_at.is_none())
            .ok_or_else(AppError::unauthenticated)?;
        let account_id = AccountId(row.account_id);
        let token_id = TokenId(row.token_id);
        let now = self.clock.now();
        if row.is_expired(now) {
            if !row.expiry_recorded {
                let command = ApiTokenCommand::RecordExpired { token_id };
                self.record(account_id, ctx, command).await;
            }
            return Err(AppError::unauthenticated());
        }
        let info = match rate_limit::take(&self.pool, row.token_id, now).await? {
            Decision::Allowed(info) => info,
            Decision::Refused {
                info,
                retry_after,
                record,
            } => {
                if record {
                    let command = ApiTokenCommand::RecordRateLimited { token_id };
                    self.record(account_id, ctx, command).await;
                }
                return Err(AppError::RateLimited { info, retry_after });
            }
        };
        self.note_use(&row, ctx, now).await?;
        let scopes = row.scopes.iter().filter_map(|s| Scope::parse(s)).collect();
        let who = Authenticated {
            account_id,
            credential: Credential::ApiToken { token_id, scopes },
            enrollment_only: false,
        };
        Ok((who, info))
    }

    /// The first use is an event; later ones only move `last_used_at`.
    async fn note_use(
        &self,
        row: &ApiTokenRecord,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let due = row
            .last_used_at
            .is_none_or(|last| (now - last).num_seconds() >= ACTIVITY_RESOLUTION_SECS);
        if row.last_used_at.is_none() {
            let token_id = TokenId(row.token_id);
            let command = ApiTokenCommand::RecordUse { token_id };
            self.record(AccountId(row.account_id), ctx, command).await;
        }
        if due {
            credentials::touch_api_token(&self.pool, row.token_id, now).await?;
        }
        Ok(())
    }

    /// Records a fact observed while authenticating. The request goes on whether or not it
    /// could be recorded; a failure is logged.
    async fn record(&self, account_id: AccountId, ctx: &RequestContext, command: ApiTokenCommand) {
        let key = self.directory.key(account_id).await.ok().flatten();
        let mut metadata = metadata(ctx, key.as_ref(), Some(account_id));
        metadata.insert("auth_method".into(), "api_token".into());
        let command = || AccountCommand::from(command.clone());
        if let Err(error) = self
            .commands
            .account(account_id, command, &metadata, Settle::No)
            .await
        {
            let error = AppError::from(error);
            tracing::warn!(%error, request_id = %ctx.request_id, "token fact not recorded");
        }
    }
}
