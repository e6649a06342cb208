use actix_web::{delete, post, web, HttpResponse};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_aggregates::account::MfaMethod;

use crate::app::mfa::reveal;
use crate::app::{AppError, ProblemCode};
use crate::app::{Authenticated, RequestContext};
use crate::http::error::Problem;
use crate::http::routes::sessions::{authenticated, LoginResponse, MfaMethodName};
use crate::startup::AppState;

#[derive(Deserialize, ToSchema)]
pub struct MfaStepRequest {
    /// The `challenge` of the `mfa_required` answer.
    #[schema(value_type = String)]
    pub challenge: SecretString,
    pub method: MfaMethodName,
    /// Six digits for `totp` and `email`; the recovery code (dashes optional) for
    /// `recovery_code`.
    #[serde(default)]
    pub code: Option<String>,
    /// For `passkey`: the `PublicKeyCredential` the browser returned for the options of
    /// `POST /v1/sessions/mfa/passkey-options`, as its `toJSON()` gives it.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub credential: Option<serde_json::Value>,
}

/// Second step of a login.
#[utoipa::path(
    tag = "mfa",
    request_body = MfaStepRequest,
    responses(
        (status = 201, body = LoginResponse),
        (status = 401, description = "challenge_invalid, mfa_code_invalid, passkey_refused", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_code_format, passkey_invalid", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too_many_attempts: with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/mfa")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn second_step(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: web::Json<MfaStepRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let method = match body.method {
        MfaMethodName::Totp => MfaMethod::Totp,
        MfaMethodName::Email => MfaMethod::Email,
        MfaMethodName::RecoveryCode => MfaMethod::RecoveryCode,
        MfaMethodName::Passkey => MfaMethod::Passkey,
    };
    let logged_in = match (method, body.credential, body.code) {
        (MfaMethod::Passkey, Some(credential), _) => {
            let passkeys = &state.app.passkeys;
            passkeys
                .second_factor(body.challenge, credential, &ctx)
                .await?
        }
        (_, _, Some(code)) => {
            let mfa = &state.app.mfa;
            mfa.complete(body.challenge, method, &code, &ctx).await?
        }
        _ => {
            return Err(AppError::with(
                ProblemCode::InvalidCodeFormat,
                "give `code`, or `credential` for a passkey",
            ))
        }
    };
    Ok(HttpResponse::Created().json(authenticated(logged_in)))
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrollmentResponse {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    pub otpauth_uri: String,
    /// The `otpauth_uri` as an SVG QR code.
    pub qr_svg: String,
    /// Ten single-use codes, shown only here.
    pub recovery_codes: Vec<String>,
}

/// Start TOTP enrollment; MFA is on once a code confirms it.
#[utoipa::path(
    tag = "mfa",
    security(("session" = [])),
    responses(
        (status = 201, body = TotpEnrollmentResponse),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "session_required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "totp_already_enabled", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/mfa/totp")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn enroll(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
) -> Result<HttpResponse, AppError> {
    let enrollment = state.app.mfa.enroll_totp(&who, &ctx).await?;
    Ok(HttpResponse::Created().json(TotpEnrollmentResponse {
        secret: reveal(&enrollment.secret),
        otpauth_uri: reveal(&enrollment.otpauth_uri),
        qr_svg: reveal(&enrollment.qr_svg),
        recovery_codes: enrollment.recovery_codes.iter().map(reveal).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    /// A current six-digit code.
    #[schema(pattern = "^[0-9]{6}$", example = "123456")]
    pub code: String,
}

/// Confirm TOTP enrollment with a current code.
#[utoipa::path(
    tag = "mfa",
    security(("session" = [])),
    request_body = CodeRequest,
    responses(
        (status = 204, description = "MFA is on"),
        (status = 409, description = "no_pending_enrollment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_code_format, confirmation_code_invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/mfa/totp/confirm")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn confirm(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, AppError> {
    state.app.mfa.confirm_totp(&who, &body.code, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct DisableTotpRequest {
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    /// A current TOTP code, instead of the password.
    pub code: Option<String>,
    /// Instead: a passkey's answer to `POST /v1/me/passkeys/reauthentication-options`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub passkey: Option<serde_json::Value>,
}

/// Turn TOTP off (needs the password or a current code).
#[utoipa::path(
    tag = "mfa",
    security(("session" = [])),
    request_body = DisableTotpRequest,
    responses(
        (status = 204, description = "TOTP is off"),
        (status = 403, description = "reauthentication_failed, session_required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "totp_not_enabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "reauthentication_required, invalid_code_format, passkey_invalid, passkey_ceremony_invalid", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/mfa/totp")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn disable(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<DisableTotpRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let passkeys = &state.app.passkeys;
    let proof = passkeys
        .proof(&who, body.password, body.code, body.passkey)
        .await?;
    state.app.mfa.disable_totp(&who, proof, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// Ten new single-use codes, shown only here; the old ones no longer work.
    pub recovery_codes: Vec<String>,
}

/// Replace the recovery codes (needs a current TOTP code).
#[utoipa::path(
    tag = "mfa",
    security(("session" = [])),
    request_body = CodeRequest,
    responses(
        (status = 200, body = RecoveryCodesResponse),
        (status = 403, description = "reauthentication_failed, session_required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "totp_not_enabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_code_format", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/mfa/recovery-codes")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn recovery_codes(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, AppError> {
    let codes = state
        .app
        .mfa
        .replace_recovery_codes(&who, &body.code, &ctx)
        .await?;
    Ok(HttpResponse::Ok().json(RecoveryCodesResponse {
        recovery_codes: codes.iter().map(reveal).collect(),
    }))
}

/// Mail a code that turns emailed codes on once confirmed.
#[utoipa::path(
    tag = "mfa",
    security(("session" = [])),
    responses(
        (status = 202, description = "a six-digit code is mailed, valid 10 minutes"),
        (status = 403, description = "session_required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "email_mfa_already_enabled", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/mfa/email")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn email_enroll(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
) -> Result<HttpResponse, AppError> {
    state.app.mfa.start_email(&who, &ctx).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Turn emailed codes on with the mailed code (five tries).
#[utoipa::path(
    tag = "mfa",
    security(("session" = [])),
    request_body = CodeRequest,
    responses(
        (status = 204, description = "emailed codes are on"),
        (status = 409, description = "no_pending_enrollment, email_mfa_already_enabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_code_format, confirmation_code_invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/mfa/email/confirm")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn email_confirm(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, AppError> {
    state.app.mfa.confirm_email(&who, &body.code, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordRequest {
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// Turn emailed codes off (needs the password).
#[utoipa::path(
    tag = "mfa",
    security(("session" = [])),
    request_body = PasswordRequest,
    responses(
        (status = 204, description = "emailed codes are off"),
        (status = 403, description = "reauthentication_failed, session_required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "email_mfa_not_enabled", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/mfa/email")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn email_disable(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<PasswordRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    state
        .app
        .mfa
        .disable_email(&who, body.password, &ctx)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct ChallengeRequest {
    #[schema(value_type = String)]
    pub challenge: SecretString,
}

/// Mail a code for this login challenge (valid 10 minutes, single use).
#[utoipa::path(
    tag = "mfa",
    request_body = ChallengeRequest,
    responses(
        (status = 202, description = "a six-digit code is mailed"),
        (status = 401, description = "challenge_invalid", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "email_mfa_not_enabled", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions/mfa/email-code")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn email_code(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: web::Json<ChallengeRequest>,
) -> Result<HttpResponse, AppError> {
    state
        .app
        .mfa
        .send_challenge_code(body.into_inner().challenge, &ctx)
        .await?;
    Ok(HttpResponse::Accepted().finish())
}
