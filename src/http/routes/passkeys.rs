//! Passkeys: registration and management under `/v1/me/passkeys`, the second factor and
//! passwordless sign-in under `/v1/sessions` (docs/adr/0021).

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::app::passkeys::PasskeyView;
use crate::app::AppError;
use crate::app::{Authenticated, RequestContext};
use crate::http::error::Problem;
use crate::http::routes::sessions::{authenticated, LoginResponse};
use crate::startup::AppState;

/// The password, or a current TOTP code, or a passkey's answer instead.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyReauthentication {
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    pub code: Option<String>,
    /// Instead: a passkey's answer to `POST /v1/me/passkeys/reauthentication-options`.
    #[schema(value_type = Option<Object>)]
    pub passkey: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishPasskeyRegistration {
    /// The `PublicKeyCredential` the browser created, as its `toJSON()` gives it.
    #[schema(value_type = Object)]
    pub credential: Value,
    /// What the owner calls it, 1 to 64 characters.
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenamePasskey {
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyOptionsRequest {
    /// The `challenge` of the `mfa_required` answer.
    #[schema(value_type = String)]
    pub challenge: SecretString,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeySignIn {
    /// The `PublicKeyCredential` the browser returned, as its `toJSON()` gives it.
    #[schema(value_type = Object)]
    pub credential: Value,
}

/// WebAuthn options, as `PublicKeyCredential.parseCreationOptionsFromJSON` (registration) or
/// `parseRequestOptionsFromJSON` (sign-in) take the value of `publicKey`.
#[derive(Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct WebauthnOptions(Value);

#[derive(Serialize, ToSchema)]
pub struct PasskeyResponse {
    /// The credential id (base64url).
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Whether the passkey may be synced to other devices, and whether it is.
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// How the browser reached the authenticator (`internal`, `hybrid`, `usb`, …).
    pub transports: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyList {
    pub passkeys: Vec<PasskeyResponse>,
}

impl From<PasskeyView> for PasskeyResponse {
    fn from(view: PasskeyView) -> Self {
        Self {
            id: view.id,
            name: view.name,
            created_at: view.created_at,
            last_used_at: view.last_used_at,
            backup_eligible: view.backup_eligible,
            backup_state: view.backup_state,
            transports: view.transports,
        }
    }
}

/// Creation options for a new passkey (needs the password or a current code).
#[utoipa::path(
    tag = "passkeys",
    operation_id = "start_passkey_registration",
    security(("session" = [])),
    request_body = PasskeyReauthentication,
    responses(
        (status = 200, body = WebauthnOptions),
        (status = 409, description = "passkeys_off", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "reauthentication_failed, session_required", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "reauthentication_required, invalid_code_format, passkey_invalid, passkey_ceremony_invalid", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/passkeys/registration")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn start_registration(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<PasskeyReauthentication>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let passkeys = &state.app.passkeys;
    let proof = passkeys
        .proof(&who, body.password, body.code, body.passkey)
        .await?;
    let options = state
        .app
        .passkeys
        .start_registration(&who, &ctx, proof)
        .await?;
    Ok(HttpResponse::Ok().json(options))
}

/// Register the passkey the browser created from the options.
#[utoipa::path(
    tag = "passkeys",
    operation_id = "finish_passkey_registration",
    security(("session" = [])),
    request_body = FinishPasskeyRegistration,
    responses(
        (status = 201, body = PasskeyResponse),
        (status = 403, description = "session_required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "passkey_exists, passkeys_off", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "passkey_invalid, passkey_registration_invalid, passkey_registration_refused, invalid_passkey_name", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/passkeys/registration/finish")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn finish_registration(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<FinishPasskeyRegistration>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let view = state
        .app
        .passkeys
        .finish_registration(&who, &ctx, body.credential, &body.name)
        .await?;
    Ok(HttpResponse::Created().json(PasskeyResponse::from(view)))
}

/// The account's passkeys.
#[utoipa::path(
    tag = "passkeys",
    operation_id = "list_passkeys",
    security(("session" = []), ("api_token" = ["read"])),
    responses(
        (status = 200, body = PasskeyList),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "insufficient_scope", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me/passkeys")]
pub async fn list(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, AppError> {
    let passkeys = state.app.passkeys.list(&who).await?;
    Ok(HttpResponse::Ok().json(PasskeyList {
        passkeys: passkeys.into_iter().map(PasskeyResponse::from).collect(),
    }))
}

/// Rename a passkey.
#[utoipa::path(
    tag = "passkeys",
    operation_id = "rename_passkey",
    security(("session" = [])),
    request_body = RenamePasskey,
    params(("id" = String, Path, description = "The credential id")),
    responses(
        (status = 204, description = "renamed"),
        (status = 403, description = "session_required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "passkey_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_passkey_name", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/me/passkeys/{id}")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn rename(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    id: web::Path<String>,
    body: web::Json<RenamePasskey>,
) -> Result<HttpResponse, AppError> {
    state
        .app
        .passkeys
        .rename(&who, &ctx, &id, &body.name)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove a passkey (needs the password or a current code).
#[utoipa::path(
    tag = "passkeys",
    operation_id = "remove_passkey",
    security(("session" = [])),
    request_body = PasskeyReauthentication,
    params(("id" = String, Path, description = "The credential id")),
    responses(
        (status = 204, description = "removed"),
        (status = 403, description = "reauthentication_failed, session_required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "passkey_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "reauthentication_required, invalid_code_format, passkey_invalid, passkey_ceremony_invalid", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/passkeys/{id}")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn remove(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    id: web::Path<String>,
    body: web::Json<PasskeyReauthentication>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let passkeys = &state.app.passkeys;
    let proof = passkeys
        .proof(&who, body.password, body.code, body.passkey)
        .await?;
    state.app.passkeys.remove(&who, &ctx, &id, proof).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Request options for re-authenticating with a passkey; the answer goes in `passkey` of a
/// request that asks for the password or a current code.
#[utoipa::path(
    tag = "passkeys",
    operation_id = "passkey_reauthentication_options",
    security(("session" = [])),
    responses(
        (status = 200, body = WebauthnOptions),
        (status = 403, description = "session_required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "no_passkey, passkeys_off", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/passkeys/reauthentication-options")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn reauthentication_options(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
) -> Result<HttpResponse, AppError> {
    let options = state
        .app
        .passkeys
        .reauthentication_options(&who, &ctx)
        .await?;
    Ok(HttpResponse::Ok().json(options))
}

/// Request options for the second step of a login with a passkey.
#[utoipa::path(
    tag = "passkeys",
    operation_id = "passkey_second_factor_options",
    request_body = PasskeyOptionsRequest,
    responses(
        (status = 200, body = WebauthnOptions),
        (status = 401, description = "challenge_invalid", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "no_passkey, passkeys_off", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too_many_attempts: with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/mfa/passkey-options")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn second_factor_options(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: web::Json<PasskeyOptionsRequest>,
) -> Result<HttpResponse, AppError> {
    let options = state
        .app
        .passkeys
        .second_factor_options(body.into_inner().challenge, &ctx)
        .await?;
    Ok(HttpResponse::Ok().json(options))
}

/// Request options for signing in with a passkey alone (no address asked).
#[utoipa::path(
    tag = "passkeys",
    operation_id = "passkey_sign_in_options",
    responses(
        (status = 200, body = WebauthnOptions),
        (status = 409, description = "passkeys_off", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too_many_attempts: with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/passkey/options")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn sign_in_options(
    state: web::Data<AppState>,
    ctx: RequestContext,
) -> Result<HttpResponse, AppError> {
    let options = state.app.passkeys.sign_in_options(&ctx).await?;
    Ok(HttpResponse::Ok().json(options))
}

/// Sign in with a passkey alone: user verification makes it multi-factor on its own.
#[utoipa::path(
    tag = "passkeys",
    operation_id = "sign_in_with_passkey",
    request_body = PasskeySignIn,
    responses(
        (status = 201, body = LoginResponse),
        (status = 409, description = "passkeys_off", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "passkey_refused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "passkey_invalid", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too_many_attempts: with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/passkey")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn sign_in(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: web::Json<PasskeySignIn>,
) -> Result<HttpResponse, AppError> {
    let logged_in = state
        .app
        .passkeys
        .sign_in(body.into_inner().credential, &ctx)
        .await?;
    Ok(HttpResponse::Created().json(authenticated(logged_in)))
}
