use actix_web::{post, web, HttpResponse};
use uuid::Uuid;
use warden_aggregates::shared::AccountId;

use crate::accounts::{Authenticated, RequestContext};
use crate::error::{AppError, Problem};
use crate::startup::AppState;

/// Lift a lock-out (password or MFA).
#[utoipa::path(
    tag = "admin",
    security(("session" = []), ("api_token" = ["admin"])),
    params(("id" = Uuid, Path, description = "account id")),
    responses(
        (status = 204, description = "unlocked"),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "account_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/admin/accounts/{id}/unlock")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn unlock(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let target = AccountId(path.into_inner());
    state.accounts.unlock(&who, target, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove every second factor of an account (lost authenticator); its sessions end.
#[utoipa::path(
    tag = "admin",
    security(("session" = []), ("api_token" = ["admin"])),
    params(("id" = Uuid, Path, description = "account id")),
    responses(
        (status = 204, description = "MFA removed"),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "account_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/admin/accounts/{id}/mfa-reset")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn mfa_reset(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let target = AccountId(path.into_inner());
    state.accounts.reset_mfa(&who, target, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}
