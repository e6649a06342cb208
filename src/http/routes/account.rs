use std::collections::BTreeSet;

use actix_web::{get, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use warden_aggregates::account::Notice;
use warden_aggregates::shared::Email;

use crate::app::{AppError, ProblemCode};
use crate::app::{Authenticated, RequestContext};
use crate::http::error::Problem;
use crate::http::routes::sessions::MfaMethodName;
use crate::startup::AppState;

const MAX_NAME: usize = 100;

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(example = "ada@example.com", format = Email)]
    pub email: String,
    /// 8 to 128 characters; common passwords are refused.
    #[schema(value_type = String, min_length = 8, max_length = 128, example = "correct horse battery staple")]
    pub password: SecretString,
    pub display_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    pub id: Uuid,
    pub email: String,
}

/// Register an account.
#[utoipa::path(
    tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = RegisterResponse),
        (status = 400, description = "malformed_json", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "email_taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_email, password_too_short, password_too_long, password_too_common, display_name_too_long", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too_many_attempts: with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/accounts")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn register(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let email = Email::parse(&body.email)
        .map_err(|e| AppError::with(ProblemCode::InvalidEmail, e.to_string()))?;
    let display_name = optional_name(body.display_name, ProblemCode::DisplayNameTooLong)?;
    let id = state
        .app
        .accounts
        .register(email.clone(), body.password, display_name, &ctx)
        .await?;
    Ok(HttpResponse::Created().json(RegisterResponse {
        id: id.0,
        email: email.as_str().to_string(),
    }))
}

/// Trims an optional free-text name and enforces its length.
pub fn optional_name(name: Option<String>, code: ProblemCode) -> Result<Option<String>, AppError> {
    let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > MAX_NAME) {
        return Err(AppError::with(
            code,
            format!("at most {MAX_NAME} characters"),
        ));
    }
    Ok(name)
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    pub registered_at: Option<DateTime<Utc>>,
    pub mfa: MfaSummary,
    pub is_admin: bool,
    /// A platform auditor: reads the audit trail, account histories and the chain.
    pub is_auditor: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MfaSummary {
    /// Second factors that are on.
    pub methods: Vec<MfaMethodName>,
    /// Workspaces of the account that require MFA.
    pub required_by: Vec<Uuid>,
    /// An enrollment waits for its confirming code.
    pub totp_pending: bool,
    pub recovery_codes_remaining: usize,
}

/// The caller's account.
#[utoipa::path(
    tag = "accounts",
    security(("session" = [])),
    responses(
        (status = 200, body = MeResponse),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me")]
#[tracing::instrument(skip_all)]
pub async fn me(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, AppError> {
    let profile = state.app.accounts.profile(&who).await?;
    Ok(HttpResponse::Ok().json(MeResponse {
        id: profile.id,
        email: profile.email.text().to_owned(),
        display_name: profile.display_name.as_ref().map(|n| n.text().to_owned()),
        registered_at: profile.registered_at,
        mfa: MfaSummary {
            methods: profile
                .mfa_methods
                .iter()
                .copied()
                .map(MfaMethodName::from)
                .collect(),
            required_by: profile.mfa_required_by.iter().map(|w| w.0).collect(),
            totp_pending: profile.totp_pending,
            recovery_codes_remaining: profile.recovery_codes_remaining,
        },
        is_admin: profile.is_admin,
        is_auditor: profile.is_auditor,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String)]
    pub current_password: SecretString,
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    pub new_password: SecretString,
}

/// Change the password; every other session ends.
#[utoipa::path(
    tag = "accounts",
    security(("session" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "changed"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "current_password_invalid", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "password_too_short, password_too_long, password_too_common", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/me/password")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn change_password(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    state
        .app
        .accounts
        .change_password(&who, body.current_password, body.new_password, &ctx)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordResetRequest {
    pub email: String,
}

/// Ask for a password reset link. 202 whether or not the account exists.
#[utoipa::path(
    tag = "accounts",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "a link is mailed if the account exists"),
        (status = 429, description = "too_many_attempts: with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "busy: too many reset requests in hand on this process, whatever the address; with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/password-resets")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn request_password_reset(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: web::Json<PasswordResetRequest>,
) -> Result<HttpResponse, AppError> {
    state
        .app
        .accounts
        .request_password_reset(&body.email, &ctx)?;
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct ConfirmPasswordResetRequest {
    /// The `token` parameter of the mailed link.
    #[schema(value_type = String)]
    pub token: SecretString,
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    pub new_password: SecretString,
}

/// Set a new password with a mailed reset token; every session ends.
#[utoipa::path(
    tag = "accounts",
    request_body = ConfirmPasswordResetRequest,
    responses(
        (status = 204, description = "the password is set"),
        (status = 422, description = "reset_token_invalid, password_too_short, password_too_long, password_too_common", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/password-resets/confirm")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn confirm_password_reset(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: web::Json<ConfirmPasswordResetRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    state
        .app
        .accounts
        .confirm_password_reset(body.token, body.new_password, &ctx)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The security notices mailed to the owner; each is on until turned off.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeSettings {
    /// A sign-in from a device (browser) the account has not signed in from before.
    #[serde(default = "on")]
    pub new_sign_in: bool,
    #[serde(default = "on")]
    pub password_changed: bool,
    /// A second factor turned off, by the owner or by support.
    #[serde(default = "on")]
    pub mfa_disabled: bool,
    #[serde(default = "on")]
    pub recovery_codes_regenerated: bool,
    #[serde(default = "on")]
    pub api_token_created: bool,
    /// Too many wrong passwords locked the account (with the way to ask for access).
    #[serde(default = "on")]
    pub account_locked: bool,
}

fn on() -> bool {
    true
}

impl NoticeSettings {
    fn of(chosen: &[(Notice, bool)]) -> Self {
        let wants = |notice| chosen.iter().any(|(n, on)| *n == notice && *on);
        Self {
            new_sign_in: wants(Notice::NewSignIn),
            password_changed: wants(Notice::PasswordChanged),
            mfa_disabled: wants(Notice::MfaDisabled),
            recovery_codes_regenerated: wants(Notice::RecoveryCodesRegenerated),
            api_token_created: wants(Notice::ApiTokenCreated),
            account_locked: wants(Notice::AccountLocked),
        }
    }

    fn off(&self) -> BTreeSet<Notice> {
        [
            (Notice::NewSignIn, self.new_sign_in),
            (Notice::PasswordChanged, self.password_changed),
            (Notice::MfaDisabled, self.mfa_disabled),
            (
                Notice::RecoveryCodesRegenerated,
                self.recovery_codes_regenerated,
            ),
            (Notice::ApiTokenCreated, self.api_token_created),
            (Notice::AccountLocked, self.account_locked),
        ]
        .into_iter()
        .filter(|(_, on)| !on)
        .map(|(notice, _)| notice)
        .collect()
    }
}

/// Which security notices the caller's account gets by mail.
#[utoipa::path(
    tag = "accounts",
    security(("session" = [])),
    responses(
        (status = 200, body = NoticeSettings),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me/notices")]
#[tracing::instrument(skip_all)]
pub async fn get_notices(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, AppError> {
    let chosen = state.app.accounts.notices(&who).await?;
    Ok(HttpResponse::Ok().json(NoticeSettings::of(&chosen)))
}

/// Choose the security notices; a field left out is on. Only from a session.
#[utoipa::path(
    tag = "accounts",
    security(("session" = [])),
    request_body = NoticeSettings,
    responses(
        (status = 200, body = NoticeSettings),
        (status = 400, description = "malformed_json", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "session_required, mfa_enrollment_required", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/me/notices")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn set_notices(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<NoticeSettings>,
) -> Result<HttpResponse, AppError> {
    let accounts = &state.app.accounts;
    accounts.set_notices(&who, body.off(), &ctx).await?;
    let chosen = accounts.notices(&who).await?;
    Ok(HttpResponse::Ok().json(NoticeSettings::of(&chosen)))
}
