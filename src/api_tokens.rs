//! API access tokens: creation behind re-authentication, the list, revocation, and bearer
//! authentication with the per-token rate limit.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;
use warden_aggregates::account::{AccountCommand, AccountEvent, NewApiToken};
use warden_aggregates::shared::{AccountId, ErrorKind, Scope, TokenId};

use crate::accounts::{metadata, AccountsService, Authenticated, Credential, RequestContext};
use crate::adapters::tokens::{self, API_PREFIX};
use crate::error::AppError;
use crate::rate_limit::{self, Decision, RateLimitInfo};

/// `last_used_at` is written at most this often per token.
const ACTIVITY_RESOLUTION_SECS: i64 = 60;

pub struct CreatedToken {
    pub id: Uuid,
    pub name: String,
    pub token: SecretString,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub struct TokenRecord {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expired: bool,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    token_id: Uuid,
    account_id: Uuid,
    name: String,
    scopes: Vec<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    expiry_recorded: bool,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl TokenRow {
    fn scopes(&self) -> Vec<Scope> {
        self.scopes.iter().filter_map(|s| Scope::parse(s)).collect()
    }
}

const TOKEN_COLUMNS: &str = "t.token_id, t.account_id, t.name, t.scopes, t.created_at,
    t.expires_at, t.expiry_recorded, t.revoked_at, a.last_used_at";

impl AccountsService {
    pub async fn create_api_token(
        &self,
        who: &Authenticated,
        name: String,
        password: SecretString,
        scopes: Vec<Scope>,
        expires_at: Option<DateTime<Utc>>,
        ctx: &RequestContext,
    ) -> Result<CreatedToken, AppError> {
        who.require_session()?;
        // These act on or read across the whole platform (every workspace's purges, everyone's
        // audit trail and events): only platform administrators may grant them.
        let privileged = scopes.iter().any(|s| {
            matches!(
                s,
                Scope::Admin | Scope::Archival | Scope::AuditRead | Scope::EventsRead
            )
        });
        if privileged && !self.account(who.account_id).await?.is_admin {
            return Err(AppError::rejected(
                ErrorKind::Forbidden,
                "scope_not_allowed",
                "only platform administrators may grant admin, archival, audit:read or events:read",
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
        let committed = self
            .act(
                who,
                who.account_id,
                ctx,
                || AccountCommand::CreateApiToken {
                    password: password.clone(),
                    token: new.clone(),
                },
                false,
            )
            .await?;
        committed
            .events
            .iter()
            .find_map(|e| match e {
                AccountEvent::ApiTokenCreated {
                    token_id,
                    name,
                    scopes,
                    expires_at,
                    at,
                    ..
                } => Some(CreatedToken {
                    id: token_id.0,
                    name: name.clone(),
                    token: token.clone(),
                    scopes: scopes.clone(),
                    created_at: *at,
                    expires_at: *expires_at,
                }),
                _ => None,
            })
            .ok_or_else(|| {
                AppError::rejected(
                    ErrorKind::Forbidden,
                    "password_invalid",
                    "the password is wrong",
                )
            })
    }

    pub async fn list_api_tokens(&self, who: &Authenticated) -> Result<Vec<TokenRecord>, AppError> {
        who.require(Scope::Read)?;
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens_v1 t
             LEFT JOIN token_activity a ON a.token_id = t.token_id
             WHERE t.account_id = $1 AND t.revoked_at IS NULL
             ORDER BY t.created_at DESC, t.token_id DESC"
        ))
        .bind(who.account_id.0)
        .fetch_all(&self.pool)
        .await?;
        let now = self.clock.now();
        Ok(rows
            .into_iter()
            .map(|row| TokenRecord {
                id: row.token_id,
                scopes: row.scopes(),
                expired: row.expires_at.is_some_and(|e| e <= now),
                name: row.name,
                created_at: row.created_at,
                expires_at: row.expires_at,
                last_used_at: row.last_used_at,
            })
            .collect())
    }

    pub async fn revoke_api_token(
        &self,
        who: &Authenticated,
        token_id: TokenId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require(Scope::Write)?;
        self.act(
            who,
            who.account_id,
            ctx,
            || AccountCommand::RevokeApiToken { token_id },
            true,
        )
        .await
        .map(|_| ())
    }

    /// The account behind a `wat_` token, after taking one slot of its rate limit.
    pub(crate) async fn authenticate_api_token(
        &self,
        token: &SecretString,
        ctx: &RequestContext,
    ) -> Result<(Authenticated, RateLimitInfo), AppError> {
        let hash =
            tokens::hash_presented(token, API_PREFIX).ok_or_else(AppError::unauthenticated)?;
        let row: Option<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens_v1 t
             LEFT JOIN token_activity a ON a.token_id = t.token_id
             WHERE t.token_hash = $1"
        ))
        .bind(&hash.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row.filter(|r| r.revoked_at.is_none()) else {
            return Err(AppError::unauthenticated());
        };
        let account_id = AccountId(row.account_id);
        let token_id = TokenId(row.token_id);
        let now = self.clock.now();
        if row.expires_at.is_some_and(|e| e <= now) {
            if !row.expiry_recorded {
                self.record(account_id, ctx, || AccountCommand::RecordApiTokenExpired {
                    token_id,
                })
                .await;
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
                    let command = || AccountCommand::RecordApiTokenRateLimited { token_id };
                    self.record(account_id, ctx, command).await;
                }
                return Err(AppError::RateLimited { info, retry_after });
            }
        };
        match row.last_used_at {
            None => {
                self.record(account_id, ctx, || AccountCommand::RecordApiTokenUse {
                    token_id,
                })
                .await;
                self.touch(row.token_id, now).await?;
            }
            Some(last) if (now - last).num_seconds() >= ACTIVITY_RESOLUTION_SECS => {
                self.touch(row.token_id, now).await?;
            }
            Some(_) => {}
        }
        let scopes = row.scopes();
        Ok((
            Authenticated {
                account_id,
                credential: Credential::ApiToken { token_id, scopes },
                enrolment_only: false,
            },
            info,
        ))
    }

    async fn touch(&self, token_id: Uuid, now: DateTime<Utc>) -> Result<(), AppError> {
        sqlx::query(
            "INSERT INTO token_activity (token_id, last_used_at) VALUES ($1, $2)
             ON CONFLICT (token_id) DO UPDATE SET last_used_at = EXCLUDED.last_used_at
             WHERE token_activity.last_used_at < EXCLUDED.last_used_at",
        )
        .bind(token_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a fact observed while authenticating. The request goes on whether or not it
    /// could be recorded; a failure is logged.
    async fn record(
        &self,
        account_id: AccountId,
        ctx: &RequestContext,
        command: impl Fn() -> AccountCommand,
    ) {
        let key = self.keys.get(account_id.0).await.ok().flatten();
        let mut metadata = metadata(ctx, key.as_ref(), Some(account_id));
        metadata.insert("auth_method".into(), "api_token".into());
        if let Err(error) = self.execute(account_id, command, &metadata).await {
            tracing::warn!(%error, request_id = %ctx.request_id, "token fact not recorded");
        }
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
