use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use warden_aggregates::shared::{Scope, TokenId};

use crate::app::AppError;
use crate::app::{Authenticated, RequestContext};
use crate::http::error::Problem;
use crate::startup::AppState;

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ScopeName {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "write")]
    Write,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "events:read")]
    EventsRead,
    #[serde(rename = "introspect")]
    Introspect,
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "archival")]
    Archival,
}

impl From<ScopeName> for Scope {
    fn from(value: ScopeName) -> Self {
        match value {
            ScopeName::Read => Scope::Read,
            ScopeName::Write => Scope::Write,
            ScopeName::AuditRead => Scope::AuditRead,
            ScopeName::EventsRead => Scope::EventsRead,
            ScopeName::Introspect => Scope::Introspect,
            ScopeName::Admin => Scope::Admin,
            ScopeName::Archival => Scope::Archival,
        }
    }
}

impl From<Scope> for ScopeName {
    fn from(value: Scope) -> Self {
        match value {
            Scope::Read => ScopeName::Read,
            Scope::Write => ScopeName::Write,
            Scope::AuditRead => ScopeName::AuditRead,
            Scope::EventsRead => ScopeName::EventsRead,
            Scope::Introspect => ScopeName::Introspect,
            Scope::Admin => ScopeName::Admin,
            Scope::Archival => ScopeName::Archival,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateTokenRequest {
    /// Unique among the account's live tokens; 1 to 100 characters.
    #[schema(example = "ci deploys", min_length = 1, max_length = 100)]
    pub name: String,
    /// The account's password: creating a token needs re-authentication.
    #[schema(value_type = String)]
    pub password: SecretString,
    /// Defaults to `["read"]`.
    pub scopes: Option<Vec<ScopeName>>,
    /// Must be in the future; absent for a token that does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedTokenResponse {
    pub id: Uuid,
    pub name: String,
    /// The token (`wat_…`). Shown only in this response.
    pub token: String,
    pub scopes: Vec<ScopeName>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Create an API access token (from a session; needs the password).
#[utoipa::path(
    operation_id = "create_token",
    tag = "tokens",
    security(("session" = [])),
    request_body = CreateTokenRequest,
    responses(
        (status = 201, body = CreatedTokenResponse),
        (status = 400, description = "malformed_json: also an unknown scope or a bad time", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "password_invalid, session_required, scope_not_allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "token_name_taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_token_name, expires_at_in_past", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/tokens")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn create(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<CreateTokenRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let mut scopes: Vec<Scope> = body
        .scopes
        .unwrap_or_else(|| vec![ScopeName::Read])
        .into_iter()
        .map(Scope::from)
        .collect();
    scopes.sort();
    scopes.dedup();
    let created = state
        .app
        .api_tokens
        .create(
            &who,
            &body.name,
            body.password,
            scopes,
            body.expires_at,
            &ctx,
        )
        .await?;
    Ok(HttpResponse::Created().json(CreatedTokenResponse {
        id: created.id,
        name: created.name,
        token: created.token.expose_secret().to_string(),
        scopes: created.scopes.into_iter().map(ScopeName::from).collect(),
        created_at: created.created_at,
        expires_at: created.expires_at,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<ScopeName>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    pub expired: bool,
}

#[derive(Serialize, ToSchema)]
pub struct TokensResponse {
    /// Live (unrevoked) tokens, newest first. Never the secret.
    pub tokens: Vec<TokenView>,
}

/// The account's API tokens.
#[utoipa::path(
    operation_id = "list_tokens",
    tag = "tokens",
    security(("session" = []), ("api_token" = ["read"])),
    responses(
        (status = 200, body = TokensResponse),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me/tokens")]
#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, AppError> {
    let tokens = state.app.api_tokens.list(&who).await?;
    Ok(HttpResponse::Ok().json(TokensResponse {
        tokens: tokens
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                name: t.name,
                scopes: t.scopes.into_iter().map(ScopeName::from).collect(),
                created_at: t.created_at,
                expires_at: t.expires_at,
                last_used_at: t.last_used_at,
                expired: t.expired,
            })
            .collect(),
    }))
}

/// Revoke an API token; no Warden process accepts it once this returns.
#[utoipa::path(
    tag = "tokens",
    security(("session" = []), ("api_token" = ["write"])),
    params(("id" = Uuid, Path, description = "token id")),
    responses(
        (status = 204, description = "revoked"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "token_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/tokens/{id}")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn revoke(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let token_id = TokenId(path.into_inner());
    state.app.api_tokens.revoke(&who, token_id, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}
