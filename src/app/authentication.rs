//! Who is behind a bearer token: a live session, or a live API token (which also takes a slot of
//! its rate limit and records its first use, expiry and refusals as events). Both come from
//! `Credentials`: this process's cache, or the aggregates.

use std::sync::Arc;

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use warden_aggregates::account::{AccountCommand, ApiTokenCommand};
use warden_aggregates::shared::{AccountId, Clock, Scope};

use super::command::{Commands, Settle};
use super::context::{metadata, Authenticated, RequestContext};
use super::credentials::cache::CachedCredential;
use super::credentials::Credentials;
use super::directory::Directory;
use super::error::AppError;
use super::problem::ProblemCode;
use crate::adapters::rate_limit::{self, Decision, RateLimitInfo};
use crate::adapters::tokens::{self, API_PREFIX, SESSION_PREFIX};

type Introspections = governor::DefaultKeyedRateLimiter<uuid::Uuid>;

#[derive(Clone)]
pub struct Authentication {
    commands: Commands,
    credentials: Credentials,
    directory: Directory,
    pool: PgPool,
    clock: Arc<dyn Clock>,
    introspections: Arc<Introspections>,
    introspections_per_second: u32,
}

impl Authentication {
    pub fn new(
        commands: Commands,
        credentials: Credentials,
        directory: Directory,
        pool: PgPool,
        introspections_per_second: u32,
    ) -> Self {
        let per_second = std::num::NonZeroU32::new(introspections_per_second.max(1))
            .unwrap_or(std::num::NonZeroU32::MIN);
        let introspections = governor::RateLimiter::keyed(governor::Quota::per_second(per_second));
        Self {
            clock: commands.clock().clone(),
            commands,
            credentials,
            directory,
            pool,
            introspections: Arc::new(introspections),
            introspections_per_second: per_second.get(),
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
        let entry = self
            .credentials
            .session(&hash.0, now)
            .await?
            .ok_or_else(AppError::unauthenticated)?;
        self.credentials.seen(&entry, now);
        Ok(entry.authenticated())
    }

    /// The account behind a `wat_` token, after taking one slot of its rate limit.
    async fn authenticate_api_token(
        &self,
        token: &SecretString,
        ctx: &RequestContext,
    ) -> Result<(Authenticated, RateLimitInfo), AppError> {
        let (entry, now) = self.live_api_token(token, ctx).await?;
        let account_id = AccountId(entry.account_id);
        let token_id = entry
            .token()
            .ok_or_else(AppError::unauthenticated)?
            .token_id;
        let info = match rate_limit::take(&self.pool, token_id.0, now).await? {
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
        self.note_use(&entry, ctx, now).await;
        Ok((entry.authenticated(), info))
    }

    /// A service introspecting credentials: an API token with the `introspect` scope (which only
    /// platform administrators grant). Its introspection calls are not charged to the token's
    /// 60 requests a minute but to a limit of their own, per process (`WARDEN_INTROSPECT_PER_SECOND`),
    /// so a service can introspect on every request it serves.
    pub async fn authenticate_introspector(
        &self,
        token: &SecretString,
        ctx: &RequestContext,
    ) -> Result<Authenticated, AppError> {
        if !token.expose_secret().starts_with(API_PREFIX) {
            return Err(AppError::with(
                ProblemCode::InsufficientScope,
                "introspection needs an API token with the `introspect` scope",
            ));
        }
        let (entry, now) = self.live_api_token(token, ctx).await?;
        let facts = entry.token().ok_or_else(AppError::unauthenticated)?;
        if !facts.scopes.contains(&Scope::Introspect) {
            return Err(AppError::with(
                ProblemCode::InsufficientScope,
                "this API token lacks the `introspect` scope",
            ));
        }
        if self.introspections.check_key(&facts.token_id.0).is_err() {
            let info = RateLimitInfo {
                limit: self.introspections_per_second,
                remaining: 0,
                reset_secs: 1,
            };
            return Err(AppError::RateLimited {
                info,
                retry_after: 1,
            });
        }
        self.note_use(&entry, ctx, now).await;
        Ok(entry.authenticated())
    }

    /// The cached entry of an unrevoked, unexpired token (an expiry seen first is recorded).
    async fn live_api_token(
        &self,
        token: &SecretString,
        ctx: &RequestContext,
    ) -> Result<(Arc<CachedCredential>, DateTime<Utc>), AppError> {
        let hash =
            tokens::hash_presented(token, API_PREFIX).ok_or_else(AppError::unauthenticated)?;
        let entry = self
            .credentials
            .api_token(&hash.0)
            .await?
            .ok_or_else(AppError::unauthenticated)?;
        let facts = entry.token().ok_or_else(AppError::unauthenticated)?;
        let now = self.clock.now();
        if facts.expires_at.is_some_and(|e| e <= now) {
            if !facts.expiry_recorded {
                let token_id = facts.token_id;
                let command = ApiTokenCommand::RecordExpired { token_id };
                self.record(AccountId(entry.account_id), ctx, command).await;
            }
            return Err(AppError::unauthenticated());
        }
        Ok((entry, now))
    }

    /// The first use is an event (asked for once per cached entry); later ones are activity.
    async fn note_use(&self, entry: &CachedCredential, ctx: &RequestContext, now: DateTime<Utc>) {
        if let Some(facts) = entry.token() {
            if facts.first_use_pending.swap(false, Ordering::AcqRel) {
                let command = ApiTokenCommand::RecordUse {
                    token_id: facts.token_id,
                };
                self.record(AccountId(entry.account_id), ctx, command).await;
            }
        }
        self.credentials.seen(entry, now);
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
