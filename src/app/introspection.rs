//! Token introspection for the services that hold conversations and reports: is this credential
//! live, whose is it, what may it do. The same liveness rules as authentication.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::shared::{Clock, Scope};
use warden_projections::queries::{credentials, workspaces};

use super::context::{Authenticated, Credential};
use super::error::AppError;
use super::problem::ProblemCode;
use crate::adapters::tokens::{self, API_PREFIX, SESSION_PREFIX};

pub enum TokenKind {
    Session,
    ApiToken,
}

pub struct Introspected {
    pub account_id: Uuid,
    pub kind: TokenKind,
    pub scopes: Vec<Scope>,
    pub workspaces: Vec<(Uuid, String)>,
    pub mfa_passed: bool,
    pub enrollment_only: bool,
    pub pin_unlocked_until: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Introspection {
    pool: PgPool,
    clock: Arc<dyn Clock>,
}

impl Introspection {
    pub fn new(pool: PgPool, clock: Arc<dyn Clock>) -> Self {
        Self { pool, clock }
    }

    /// `None` when the token is not live (unknown, ended, revoked, expired).
    pub async fn introspect(
        &self,
        who: &Authenticated,
        token: &SecretString,
    ) -> Result<Option<Introspected>, AppError> {
        match who.credential {
            Credential::ApiToken { .. } => who.require(Scope::Introspect)?,
            Credential::Session(_) => {
                return Err(AppError::with(
                    ProblemCode::InsufficientScope,
                    "introspection needs an API token with the `introspect` scope",
                ))
            }
        }
        let now = self.clock.now();
        let found = if let Some(hash) = tokens::hash_presented(token, SESSION_PREFIX) {
            self.session(&hash.0, now).await?
        } else if let Some(hash) = tokens::hash_presented(token, API_PREFIX) {
            self.api_token(&hash.0, now).await?
        } else {
            None
        };
        let Some(mut found) = found else {
            return Ok(None);
        };
        found.workspaces = workspaces::memberships(&self.pool, found.account_id).await?;
        Ok(Some(found))
    }

    async fn session(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Introspected>, AppError> {
        let session = credentials::session_by_token(&self.pool, hash).await?;
        Ok(session
            .filter(|s| s.lifetime.is_live(now))
            .map(|s| Introspected {
                account_id: s.account_id,
                kind: TokenKind::Session,
                scopes: if s.enrollment_only {
                    vec![]
                } else {
                    vec![Scope::Read, Scope::Write]
                },
                workspaces: vec![],
                mfa_passed: s.method.is_some_and(|m| m != "password"),
                enrollment_only: s.enrollment_only,
                pin_unlocked_until: s.pin_unlocked_until.filter(|u| *u > now),
                expires_at: Some(s.lifetime.expires_at),
            }))
    }

    async fn api_token(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Introspected>, AppError> {
        let token = credentials::api_token_by_hash(&self.pool, hash).await?;
        Ok(token.filter(|t| t.is_live(now)).map(|t| Introspected {
            account_id: t.account_id,
            kind: TokenKind::ApiToken,
            scopes: t.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            workspaces: vec![],
            mfa_passed: false,
            enrollment_only: false,
            pin_unlocked_until: None,
            expires_at: t.expires_at,
        }))
    }
}
