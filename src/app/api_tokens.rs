//! API access tokens: creation behind re-authentication, the list, revocation. Authenticating
//! with one is in `authentication`.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::account::{AccountCommand, ApiTokenCommand, NewApiToken, Outcome};
use warden_aggregates::shared::{Scope, TokenId};
use warden_projections::queries;

use super::command::{Commands, Settle};
use super::context::{Authenticated, RequestContext};
use super::error::AppError;
use super::problem::ProblemCode;
use crate::adapters::tokens::{self, API_PREFIX};

pub struct CreatedToken {
    pub id: Uuid,
    pub name: String,
    pub token: SecretString,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token name has 1 to this many characters.
pub const MAX_NAME: usize = 100;

pub struct TokenEntry {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expired: bool,
}

/// These act on or read across the whole platform (every workspace's purges, everyone's audit
/// trail and events): only platform administrators may grant them.
pub fn platform_wide(scope: &Scope) -> bool {
    matches!(
        scope,
        Scope::Admin | Scope::Archival | Scope::AuditRead | Scope::EventsRead | Scope::Introspect
    )
}

#[derive(Clone)]
pub struct ApiTokens {
    commands: Commands,
    pool: PgPool,
}

impl ApiTokens {
    pub fn new(commands: Commands, pool: PgPool) -> Self {
        Self { commands, pool }
    }

    pub async fn create(
        &self,
        who: &Authenticated,
        name: &str,
        password: SecretString,
        scopes: Vec<Scope>,
        expires_at: Option<DateTime<Utc>>,
        ctx: &RequestContext,
    ) -> Result<CreatedToken, AppError> {
        who.require_session()?;
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(AppError::with(
                ProblemCode::InvalidTokenName,
                format!("a token name has 1 to {MAX_NAME} characters"),
            ));
        }
        if scopes.iter().any(platform_wide)
            && !self.commands.load_account(who.account_id).await?.is_admin()
        {
            return Err(AppError::with(
                ProblemCode::ScopeNotAllowed,
                "only platform administrators may grant admin, archival, audit:read, events:read or introspect",
            ));
        }
        let (token, token_hash) = tokens::mint(API_PREFIX);
        let new = NewApiToken {
            token_id: TokenId(Uuid::now_v7()),
            name,
            token_hash,
            scopes,
            expires_at,
        };
        let command = || ApiTokenCommand::Create {
            password: password.clone(),
            token: new.clone(),
        };
        let refused = ProblemCode::PasswordInvalid;
        match self
            .commands
            .own(who, ctx, command, Settle::Views, refused)
            .await?
        {
            Outcome::TokenCreated { at } => Ok(CreatedToken {
                id: new.token_id.0,
                name: new.name,
                token,
                scopes: new.scopes,
                created_at: at,
                expires_at: new.expires_at,
            }),
            _ => Err(AppError::new(refused)),
        }
    }

    pub async fn list(&self, who: &Authenticated) -> Result<Vec<TokenEntry>, AppError> {
        who.require(Scope::Read)?;
        let now = self.commands.clock().now();
        let rows = queries::credentials::api_tokens_of(&self.pool, who.account_id.0).await?;
        Ok(rows
            .into_iter()
            .map(|row| TokenEntry {
                id: row.token_id,
                scopes: row.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                expired: row.is_expired(now),
                name: row.name,
                created_at: row.created_at,
                expires_at: row.expires_at,
                last_used_at: row.last_used_at,
            })
            .collect())
    }

    pub async fn revoke(
        &self,
        who: &Authenticated,
        token_id: TokenId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require(Scope::Write)?;
        let command = || AccountCommand::from(ApiTokenCommand::Revoke { token_id });
        self.commands
            .by(who, ctx, who.account_id, command, Settle::Revocation)
            .await?;
        Ok(())
    }
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("token", &"[redacted]")
            .finish()
    }
}
