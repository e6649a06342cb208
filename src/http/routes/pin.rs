use actix_web::{delete, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppError;
use crate::app::{Authenticated, RequestContext};
use crate::http::error::Problem;
use crate::http::routes::mfa::PasswordRequest;
use crate::startup::AppState;

#[derive(Deserialize, ToSchema)]
pub struct SetPinRequest {
    /// 4 to 8 digits.
    #[schema(value_type = String, pattern = "^[0-9]{4,8}$", example = "4821")]
    pub pin: SecretString,
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// Set or replace the reporting PIN (needs the password).
#[utoipa::path(
    tag = "pin",
    security(("session" = [])),
    request_body = SetPinRequest,
    responses(
        (status = 204, description = "the PIN is set"),
        (status = 403, description = "reauthentication_failed, session_required", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_pin", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/me/pin")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn set(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<SetPinRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    state
        .app
        .pin
        .set(&who, body.pin, body.password, &ctx)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove the reporting PIN (needs the password).
#[utoipa::path(
    tag = "pin",
    security(("session" = [])),
    request_body = PasswordRequest,
    responses(
        (status = 204, description = "the PIN is removed"),
        (status = 403, description = "reauthentication_failed, session_required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "pin_not_set", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/pin")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn remove(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<PasswordRequest>,
) -> Result<HttpResponse, AppError> {
    state
        .app
        .pin
        .remove(&who, body.into_inner().password, &ctx)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyPinRequest {
    #[schema(value_type = String)]
    pub pin: SecretString,
}

#[derive(Serialize, ToSchema)]
pub struct PinUnlockedResponse {
    /// Reporting history is unlocked for this session until then (15 minutes).
    pub unlocked_until: DateTime<Utc>,
}

/// Unlock reporting history for this session with the PIN; 5 wrong PINs lock verification for
/// 15 minutes.
#[utoipa::path(
    tag = "pin",
    security(("session" = [])),
    request_body = VerifyPinRequest,
    responses(
        (status = 200, body = PinUnlockedResponse),
        (status = 403, description = "pin_invalid, session_required", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "pin_not_set", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "pin_locked: with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/pin/verify")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn verify(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<VerifyPinRequest>,
) -> Result<HttpResponse, AppError> {
    let unlocked_until = state
        .app
        .pin
        .verify(&who, body.into_inner().pin, &ctx)
        .await?;
    Ok(HttpResponse::Ok().json(PinUnlockedResponse { unlocked_until }))
}
