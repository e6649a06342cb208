//! Single sign-on: configuring identity providers (platform and workspace), the public list of
//! "Sign in with …" buttons, and the browser's way through a provider and back.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use warden_aggregates::identity_provider::ProviderOwner;
use warden_aggregates::shared::{ProviderId, WorkspaceId};

use crate::app::identity_providers::{ProviderInput, ProviderRecord};
use crate::app::sso::{Callback, LinkCode, BROWSER_COOKIE};
use crate::app::{AppError, Authenticated, RequestContext};
use crate::http::error::Problem;
use crate::http::routes::sessions::{authenticated, LoginResponse};
use crate::startup::AppState;

/// A provider's settings. All but the optional ones are required to configure a provider; a
/// change (`PATCH`) gives only what changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderRequest {
    /// Shown on the sign-in button, at most 100 characters.
    pub name: Option<String>,
    /// The issuer exactly as the provider names itself; discovery is read from
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// Sealed at rest and never returned.
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<SecretString>,
    /// `openid email profile` by default.
    pub scopes: Option<Vec<String>>,
    /// ID token signing algorithms accepted; `RS256` and `ES256` by default. Symmetric ones and
    /// `none` are refused.
    pub algorithms: Option<Vec<String>>,
    /// A first sign-in with a verified, unknown address creates an account (platform providers).
    pub create_accounts: Option<bool>,
    /// A verified address may sign in to the existing account with it (platform providers).
    pub link_by_verified_email: Option<bool>,
}

impl From<ProviderRequest> for ProviderInput {
    fn from(r: ProviderRequest) -> Self {
        Self {
            name: r.name,
            issuer: r.issuer,
            client_id: r.client_id,
            client_secret: r.client_secret,
            scopes: r.scopes,
            algorithms: r.algorithms,
            create_accounts: r.create_accounts,
            link_by_verified_email: r.link_by_verified_email,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProviderResponse {
    pub id: Uuid,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub algorithms: Vec<String>,
    pub create_accounts: bool,
    pub link_by_verified_email: bool,
    /// The workspace whose members it signs in; absent for a platform provider.
    pub workspace_id: Option<Uuid>,
}

impl From<ProviderRecord> for ProviderResponse {
    fn from(p: ProviderRecord) -> Self {
        Self {
            id: p.id.0,
            name: p.name,
            issuer: p.issuer,
            client_id: p.client_id,
            scopes: p.scopes,
            algorithms: p.algorithms,
            create_accounts: p.create_accounts,
            link_by_verified_email: p.link_by_verified_email,
            workspace_id: match p.owner {
                ProviderOwner::Platform => None,
                ProviderOwner::Workspace(w) => Some(w.0),
            },
        }
    }
}

fn workspace(id: Uuid) -> ProviderOwner {
    ProviderOwner::Workspace(WorkspaceId(id))
}

async fn configure(
    state: &AppState,
    who: &Authenticated,
    ctx: &RequestContext,
    owner: ProviderOwner,
    body: ProviderRequest,
) -> Result<HttpResponse, AppError> {
    let app = &state.app.identity_providers;
    let record = app.configure(who, owner, body.into(), ctx).await?;
    Ok(HttpResponse::Created().json(ProviderResponse::from(record)))
}

async fn list(
    state: &AppState,
    who: &Authenticated,
    owner: ProviderOwner,
) -> Result<HttpResponse, AppError> {
    let records = state.app.identity_providers.owned(who, owner).await?;
    let body: Vec<ProviderResponse> = records.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(body))
}

async fn show(
    state: &AppState,
    who: &Authenticated,
    owner: ProviderOwner,
    id: Uuid,
) -> Result<HttpResponse, AppError> {
    let app = &state.app.identity_providers;
    let record = app.get(who, owner, ProviderId(id)).await?;
    Ok(HttpResponse::Ok().json(ProviderResponse::from(record)))
}

async fn change(
    state: &AppState,
    who: &Authenticated,
    ctx: &RequestContext,
    (owner, id): (ProviderOwner, Uuid),
    body: ProviderRequest,
) -> Result<HttpResponse, AppError> {
    let app = &state.app.identity_providers;
    let record = app
        .change(who, owner, ProviderId(id), body.into(), ctx)
        .await?;
    Ok(HttpResponse::Ok().json(ProviderResponse::from(record)))
}

async fn remove(
    state: &AppState,
    who: &Authenticated,
    ctx: &RequestContext,
    owner: ProviderOwner,
    id: Uuid,
) -> Result<HttpResponse, AppError> {
    let app = &state.app.identity_providers;
    app.remove(who, owner, ProviderId(id), ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Configure an identity provider for everyone (platform administrators).
#[utoipa::path(
    tag = "sso",
    security(("session" = []), ("api_token" = ["admin"])),
    request_body = ProviderRequest,
    responses(
        (status = 201, body = ProviderResponse),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_identity_provider", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/admin/identity-providers")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn admin_create(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<ProviderRequest>,
) -> Result<HttpResponse, AppError> {
    configure(
        &state,
        &who,
        &ctx,
        ProviderOwner::Platform,
        body.into_inner(),
    )
    .await
}

/// The platform's identity providers (platform administrators).
#[utoipa::path(
    tag = "sso",
    security(("session" = []), ("api_token" = ["admin"])),
    responses(
        (status = 200, body = [ProviderResponse]),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/admin/identity-providers")]
#[tracing::instrument(skip_all)]
pub async fn admin_list(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, AppError> {
    list(&state, &who, ProviderOwner::Platform).await
}

/// One platform identity provider (platform administrators).
#[utoipa::path(
    tag = "sso",
    security(("session" = []), ("api_token" = ["admin"])),
    params(("id" = Uuid, Path, description = "provider id")),
    responses(
        (status = 200, body = ProviderResponse),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "identity_provider_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/admin/identity-providers/{id}")]
#[tracing::instrument(skip_all)]
pub async fn admin_show(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    show(&state, &who, ProviderOwner::Platform, path.into_inner()).await
}

/// Change a platform identity provider (platform administrators).
#[utoipa::path(
    tag = "sso",
    security(("session" = []), ("api_token" = ["admin"])),
    params(("id" = Uuid, Path, description = "provider id")),
    request_body = ProviderRequest,
    responses(
        (status = 200, body = ProviderResponse),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "identity_provider_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_identity_provider", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/admin/identity-providers/{id}")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn admin_change(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
    body: web::Json<ProviderRequest>,
) -> Result<HttpResponse, AppError> {
    let target = (ProviderOwner::Platform, path.into_inner());
    change(&state, &who, &ctx, target, body.into_inner()).await
}

/// Remove a platform identity provider (platform administrators): nobody signs in with it any
/// more.
#[utoipa::path(
    tag = "sso",
    security(("session" = []), ("api_token" = ["admin"])),
    params(("id" = Uuid, Path, description = "provider id")),
    responses(
        (status = 204, description = "removed"),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "identity_provider_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/admin/identity-providers/{id}")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn admin_remove(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    remove(
        &state,
        &who,
        &ctx,
        ProviderOwner::Platform,
        path.into_inner(),
    )
    .await
}

/// Configure an identity provider for a workspace's members (account holders). It signs in
/// only members who linked it from their settings.
#[utoipa::path(
    tag = "sso",
    security(("session" = []), ("api_token" = ["write"])),
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = ProviderRequest,
    responses(
        (status = 201, body = ProviderResponse),
        (status = 403, description = "account_holder_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_identity_provider, workspace_provider_too_broad", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/workspaces/{id}/identity-providers")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn workspace_create(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
    body: web::Json<ProviderRequest>,
) -> Result<HttpResponse, AppError> {
    let owner = workspace(path.into_inner());
    configure(&state, &who, &ctx, owner, body.into_inner()).await
}

/// A workspace's identity providers (account holders).
#[utoipa::path(
    tag = "sso",
    security(("session" = []), ("api_token" = ["write"])),
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = [ProviderResponse]),
        (status = 403, description = "account_holder_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/workspaces/{id}/identity-providers")]
#[tracing::instrument(skip_all)]
pub async fn workspace_list(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    list(&state, &who, workspace(path.into_inner())).await
}

/// One of a workspace's identity providers (account holders).
#[utoipa::path(
    tag = "sso",
    security(("session" = []), ("api_token" = ["write"])),
    params(
        ("id" = Uuid, Path, description = "workspace id"),
        ("provider_id" = Uuid, Path, description = "provider id"),
    ),
    responses(
        (status = 200, body = ProviderResponse),
        (status = 403, description = "account_holder_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found, identity_provider_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/workspaces/{id}/identity-providers/{provider_id}")]
#[tracing::instrument(skip_all)]
pub async fn workspace_show(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, AppError> {
    let (id, provider) = path.into_inner();
    show(&state, &who, workspace(id), provider).await
}

/// Change one of a workspace's identity providers (account holders).
#[utoipa::path(
    tag = "sso",
    security(("session" = []), ("api_token" = ["write"])),
    params(
        ("id" = Uuid, Path, description = "workspace id"),
        ("provider_id" = Uuid, Path, description = "provider id"),
    ),
    request_body = ProviderRequest,
    responses(
        (status = 200, body = ProviderResponse),
        (status = 403, description = "account_holder_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found, identity_provider_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_identity_provider, workspace_provider_too_broad", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/workspaces/{id}/identity-providers/{provider_id}")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn workspace_change(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<ProviderRequest>,
) -> Result<HttpResponse, AppError> {
    let (id, provider) = path.into_inner();
    change(
        &state,
        &who,
        &ctx,
        (workspace(id), provider),
        body.into_inner(),
    )
    .await
}

/// Remove one of a workspace's identity providers (account holders).
#[utoipa::path(
    tag = "sso",
    security(("session" = []), ("api_token" = ["write"])),
    params(
        ("id" = Uuid, Path, description = "workspace id"),
        ("provider_id" = Uuid, Path, description = "provider id"),
    ),
    responses(
        (status = 204, description = "removed"),
        (status = 403, description = "account_holder_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found, identity_provider_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/workspaces/{id}/identity-providers/{provider_id}")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn workspace_remove(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, AppError> {
    let (id, provider) = path.into_inner();
    remove(&state, &who, &ctx, workspace(id), provider).await
}

#[derive(Serialize, ToSchema)]
pub struct ProviderButton {
    pub id: Uuid,
    pub name: String,
}

/// The identity providers a sign-in page shows as "Sign in with …" buttons.
#[utoipa::path(tag = "sso", responses((status = 200, body = [ProviderButton])))]
#[get("/v1/identity-providers")]
#[tracing::instrument(skip_all)]
pub async fn buttons(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let providers = state.app.identity_providers.public().await?;
    let body: Vec<ProviderButton> = providers
        .into_iter()
        .map(|p| ProviderButton {
            id: p.id.0,
            name: p.name,
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize, IntoParams)]
pub struct StartQuery {
    /// Where the browser returns with its `login_code`: a URL on an allowed frontend origin.
    pub return_to: String,
    /// Set by `POST /v1/me/identities` when the browser links a provider to a signed-in
    /// account.
    pub link: Option<String>,
}

/// Start signing in at a provider: redirects the browser there (state, nonce and PKCE S256),
/// with a `__Host-` cookie that binds the attempt to this browser for 10 minutes.
#[utoipa::path(
    tag = "sso",
    params(("provider_id" = Uuid, Path, description = "provider id"), StartQuery),
    responses(
        (status = 302, description = "to the provider's authorization endpoint"),
        (status = 404, description = "identity_provider_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "return_to_not_allowed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "sso_provider_unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/sso/{provider_id}/start")]
#[tracing::instrument(skip_all)]
pub async fn start(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, AppError> {
    let provider = ProviderId(path.into_inner());
    let link_code = query.link.as_deref().map(LinkCode);
    let started = state
        .app
        .sso
        .start(provider, &query.return_to, link_code)
        .await?;
    let cookie = Cookie::build(
        BROWSER_COOKIE,
        secrecy::ExposeSecret::expose_secret(&started.browser_secret).to_string(),
    )
    .path("/")
    .secure(true)
    .http_only(true)
    .same_site(SameSite::Lax)
    .max_age(actix_web::cookie::time::Duration::minutes(10))
    .finish();
    Ok(HttpResponse::Found()
        .insert_header(("Location", started.authorization_url))
        .cookie(cookie)
        .finish())
}

#[derive(Deserialize, IntoParams)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The issuer of the answer (RFC 9207).
    pub iss: Option<String>,
    pub error: Option<String>,
}

/// Where the provider sends the browser back: checks the answer, signs in (linking or creating
/// the account where the provider's rules allow), and redirects to `return_to` with a one-time
/// `login_code`. A provider sign-in skips the second factor: the provider is trusted.
#[utoipa::path(
    tag = "sso",
    params(CallbackQuery),
    responses(
        (status = 303, description = "to `return_to` with `login_code`"),
        (status = 401, description = "sso_token_invalid, sso_provider_refused", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "sso_account_unknown, sso_not_a_member", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "identity_provider_not_found, account_erased", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "sso_link_required, identity_taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "sso_attempt_invalid, sso_issuer_mismatch", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "sso_provider_unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/sso/callback")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn callback(
    state: web::Data<AppState>,
    ctx: RequestContext,
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let answer = Callback {
        code: query.code,
        state: query.state,
        iss: query.iss,
        error: query.error,
    };
    let browser = req.cookie(BROWSER_COOKIE).map(|c| c.value().to_string());
    let to = state
        .app
        .sso
        .callback(answer, browser.as_deref(), &ctx)
        .await?;
    let mut spent = Cookie::build(BROWSER_COOKIE, "")
        .path("/")
        .secure(true)
        .http_only(true)
        .finish();
    spent.make_removal();
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .cookie(spent)
        .finish())
}

#[derive(Deserialize, ToSchema)]
pub struct ExchangeRequest {
    #[schema(value_type = String)]
    pub login_code: SecretString,
}

/// Exchange the one-time login code of a provider sign-in for its session (once, within 60
/// seconds).
#[utoipa::path(
    tag = "sso",
    request_body = ExchangeRequest,
    responses(
        (status = 201, body = LoginResponse),
        (status = 401, description = "login_code_invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sso/exchange")]
#[tracing::instrument(skip_all)]
pub async fn exchange(
    state: web::Data<AppState>,
    body: web::Json<ExchangeRequest>,
) -> Result<HttpResponse, AppError> {
    let code = secrecy::ExposeSecret::expose_secret(&body.login_code).to_string();
    let logged_in = state.app.sso.exchange(&code).await?;
    Ok(HttpResponse::Created().json(authenticated(logged_in)))
}

#[derive(Deserialize, ToSchema)]
pub struct LinkRequest {
    pub provider_id: Uuid,
    /// Where the browser returns, with `linked={provider_id}`, once the provider signed in.
    pub return_to: String,
    /// The password, or else a current TOTP code, or else a passkey's answer to
    /// `POST /v1/me/passkeys/reauthentication-options`, proves the owner again.
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    pub code: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub passkey: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct LinkResponse {
    /// The Warden address the browser opens to sign in at the provider (10 minutes, once).
    pub start_url: String,
}

/// Start linking an identity provider to the signed-in account (after re-authentication).
#[utoipa::path(
    tag = "sso",
    security(("session" = [])),
    request_body = LinkRequest,
    responses(
        (status = 201, body = LinkResponse),
        (status = 403, description = "reauthentication_failed, session_required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "identity_provider_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "identity_already_linked", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "return_to_not_allowed, reauthentication_required, invalid_code_format, passkey_invalid, passkey_ceremony_invalid", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/identities")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn link(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<LinkRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let passkeys = &state.app.passkeys;
    let proof = passkeys
        .proof(&who, body.password, body.code, body.passkey)
        .await?;
    let provider = ProviderId(body.provider_id);
    let start_url = state
        .app
        .sso
        .start_link(&who, provider, &body.return_to, proof, &ctx)
        .await?;
    Ok(HttpResponse::Created().json(LinkResponse { start_url }))
}

#[derive(Serialize, ToSchema)]
pub struct IdentityView {
    pub provider_id: Uuid,
    /// Absent once the provider was removed.
    pub provider_name: Option<String>,
    pub issuer: String,
    pub linked_at: chrono::DateTime<chrono::Utc>,
}

/// The identity providers linked to the signed-in account.
#[utoipa::path(
    tag = "sso",
    security(("session" = []), ("api_token" = ["read"])),
    responses(
        (status = 200, body = [IdentityView]),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me/identities")]
#[tracing::instrument(skip_all)]
pub async fn identities(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, AppError> {
    let entries = state.app.sso.identities(&who).await?;
    let body: Vec<IdentityView> = entries
        .into_iter()
        .map(|e| IdentityView {
            provider_id: e.provider_id.0,
            provider_name: e.provider_name,
            issuer: e.issuer,
            linked_at: e.linked_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

/// Unlink an identity provider; its sessions end. Refused when it is the last way to sign in.
#[utoipa::path(
    tag = "sso",
    security(("session" = [])),
    params(("provider_id" = Uuid, Path, description = "provider id")),
    responses(
        (status = 204, description = "unlinked"),
        (status = 403, description = "session_required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "identity_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "last_way_to_sign_in", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/identities/{provider_id}")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn unlink(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let provider = ProviderId(path.into_inner());
    state.app.sso.unlink(&who, provider, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct LogoutForm {
    /// A logout token (JWT) the provider signed.
    pub logout_token: String,
}

/// OpenID Connect Back-Channel Logout 1.0: the provider ends its session, and with it the
/// Warden sessions it started, on every Warden process before this answers. Register
/// `…/v1/sso/{provider_id}/backchannel-logout` as the client's back-channel logout URI.
#[utoipa::path(
    tag = "sso",
    params(("provider_id" = Uuid, Path, description = "provider id")),
    request_body(content = LogoutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the sessions it names are ended"),
        (status = 400, description = "logout_token_invalid, malformed_form", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "identity_provider_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "sso_provider_unavailable, revocation_pending", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sso/{provider_id}/backchannel-logout")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn backchannel_logout(
    state: web::Data<AppState>,
    ctx: RequestContext,
    path: web::Path<Uuid>,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, AppError> {
    let provider = ProviderId(path.into_inner());
    state
        .app
        .sso
        .backchannel_logout(provider, &form.logout_token, &ctx)
        .await?;
    Ok(HttpResponse::Ok().finish())
}
