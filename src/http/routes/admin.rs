use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use warden_aggregates::shared::AccountId;

use crate::app::AppError;
use crate::app::{Authenticated, RequestContext};
use crate::http::error::Problem;
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
    state.app.admin.unlock(&who, target, &ctx).await?;
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
    state.app.admin.reset_mfa(&who, target, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Make the account a platform auditor: it may read the audit log, account histories, state at
/// an instant, the chain's verification and exports — and nothing else.
#[utoipa::path(
    tag = "admin",
    operation_id = "grant_auditor",
    security(("session" = []), ("api_token" = ["admin"])),
    params(("id" = Uuid, Path, description = "account id")),
    responses(
        (status = 204, description = "the account is an auditor"),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "account_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/admin/accounts/{id}/auditor")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn grant_auditor(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let target = AccountId(path.into_inner());
    state
        .app
        .admin
        .set_auditor(&who, target, true, &ctx)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Take the auditor role back; refused from the next request on.
#[utoipa::path(
    tag = "admin",
    operation_id = "revoke_auditor",
    security(("session" = []), ("api_token" = ["admin"])),
    params(("id" = Uuid, Path, description = "account id")),
    responses(
        (status = 204, description = "the account is no longer an auditor"),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "account_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/admin/accounts/{id}/auditor")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn revoke_auditor(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let target = AccountId(path.into_inner());
    state
        .app
        .admin
        .set_auditor(&who, target, false, &ctx)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct AccessRequestBody {
    pub email: String,
    /// What happened, for support; 1 to 2000 characters.
    #[schema(min_length = 1, max_length = 2000)]
    pub reason: String,
}

/// A locked-out user asks support to unblock the account. Always 202.
#[utoipa::path(
    tag = "admin",
    request_body = AccessRequestBody,
    responses(
        (status = 202, description = "recorded if the account exists"),
        (status = 422, description = "invalid_reason", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too_many_attempts: with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/access-requests")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn request_access(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: web::Json<AccessRequestBody>,
) -> Result<HttpResponse, AppError> {
    state
        .app
        .admin
        .request_access(&body.email, &body.reason, &ctx)
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Deserialize, IntoParams)]
pub struct AccessRequestFilter {
    /// `open`, `approved` or `denied`; all when absent.
    pub status: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AccessRequestView {
    pub id: Uuid,
    pub account_id: Uuid,
    pub email: String,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    /// `open`, `approved` or `denied`.
    pub status: String,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct AccessRequestsResponse {
    /// Newest first.
    pub access_requests: Vec<AccessRequestView>,
}

/// Unblock requests.
#[utoipa::path(
    tag = "admin",
    security(("session" = []), ("api_token" = ["admin"])),
    params(AccessRequestFilter),
    responses(
        (status = 200, body = AccessRequestsResponse),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/admin/access-requests")]
#[tracing::instrument(skip_all)]
pub async fn access_requests(
    state: web::Data<AppState>,
    who: Authenticated,
    filter: web::Query<AccessRequestFilter>,
) -> Result<HttpResponse, AppError> {
    let records = state
        .app
        .admin
        .access_requests(&who, filter.status.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(AccessRequestsResponse {
        access_requests: records
            .into_iter()
            .map(|r| AccessRequestView {
                id: r.id,
                account_id: r.account_id,
                email: r.email.into_text(),
                reason: r.reason.into_text(),
                requested_at: r.requested_at,
                status: r.status,
                decided_at: r.decided_at,
            })
            .collect(),
    }))
}

/// Approve an unblock request: every lock of the account is lifted.
#[utoipa::path(
    tag = "admin",
    security(("session" = []), ("api_token" = ["admin"])),
    params(("id" = Uuid, Path, description = "access request id")),
    responses(
        (status = 204, description = "approved; the account is unlocked"),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "access_request_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/admin/access-requests/{id}/approve")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn approve(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    state
        .app
        .admin
        .decide_access_request(&who, path.into_inner(), true, &ctx)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deny an unblock request.
#[utoipa::path(
    tag = "admin",
    security(("session" = []), ("api_token" = ["admin"])),
    params(("id" = Uuid, Path, description = "access request id")),
    responses(
        (status = 204, description = "denied"),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "access_request_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/admin/access-requests/{id}/deny")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn deny(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    state
        .app
        .admin
        .decide_access_request(&who, path.into_inner(), false, &ctx)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Crypto-shred an account's personal data (its key is destroyed; the log stays intact and its
/// personal fields read `erased`). Every session and token of the account ends.
#[utoipa::path(
    tag = "admin",
    security(("session" = []), ("api_token" = ["admin"])),
    params(("id" = Uuid, Path, description = "account id")),
    responses(
        (status = 204, description = "erased (again: the erasure is complete)"),
        (status = 403, description = "admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "account_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/admin/accounts/{id}/erase")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn erase(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let target = AccountId(path.into_inner());
    state.app.admin.erase(&who, target, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}
