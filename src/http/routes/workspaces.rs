use std::collections::BTreeMap;

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use warden_aggregates::shared::{AccountId, WorkspaceId};
use warden_aggregates::workspace::Role;

use crate::app::archival::ArchivalRecord;
use crate::app::workspaces::WorkspaceRecord;
use crate::app::{AppError, ProblemCode};
use crate::app::{Authenticated, RequestContext};
use crate::http::error::Problem;
use crate::http::routes::account::optional_name;
use crate::startup::AppState;
use warden_aggregates::workspace::archival::CATEGORIES;

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    AccountHolder,
    Supervisor,
    Agent,
}

impl From<RoleName> for Role {
    fn from(value: RoleName) -> Self {
        match value {
            RoleName::AccountHolder => Role::AccountHolder,
            RoleName::Supervisor => Role::Supervisor,
            RoleName::Agent => Role::Agent,
        }
    }
}

impl From<Role> for RoleName {
    fn from(value: Role) -> Self {
        match value {
            Role::AccountHolder => RoleName::AccountHolder,
            Role::Supervisor => RoleName::Supervisor,
            Role::Agent => RoleName::Agent,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub account_id: Uuid,
    pub role: RoleName,
}

#[derive(Serialize, ToSchema)]
pub struct WorkspaceSettings {
    /// Members must pass MFA at login.
    pub mfa_required: bool,
}

#[derive(Serialize, ToSchema)]
pub struct WorkspaceResponse {
    pub id: Uuid,
    pub name: String,
    pub created_at: Option<DateTime<Utc>>,
    pub settings: WorkspaceSettings,
    /// The caller's role.
    pub role: RoleName,
    pub members: Vec<MemberView>,
}

impl From<WorkspaceRecord> for WorkspaceResponse {
    fn from(w: WorkspaceRecord) -> Self {
        Self {
            id: w.id,
            name: w.name,
            created_at: w.created_at,
            settings: WorkspaceSettings {
                mfa_required: w.mfa_required,
            },
            role: w.role.into(),
            members: w
                .members
                .into_iter()
                .map(|(account_id, role)| MemberView {
                    account_id,
                    role: role.into(),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateWorkspaceRequest {
    #[schema(min_length = 1, max_length = 100, example = "Support desk")]
    pub name: String,
}

/// Create a workspace; the caller is its account holder.
#[utoipa::path(
    tag = "workspaces",
    security(("session" = []), ("api_token" = ["write"])),
    request_body = CreateWorkspaceRequest,
    responses(
        (status = 201, body = WorkspaceResponse),
        (status = 403, description = "mfa_enrollment_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_workspace_name", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/workspaces")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn create(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    body: web::Json<CreateWorkspaceRequest>,
) -> Result<HttpResponse, AppError> {
    let name = optional_name(
        Some(body.into_inner().name),
        ProblemCode::InvalidWorkspaceName,
    )?
    .ok_or_else(|| AppError::with(ProblemCode::InvalidWorkspaceName, "a name is required"))?;
    let workspace = state.app.workspaces.create(&who, name, &ctx).await?;
    Ok(HttpResponse::Created().json(WorkspaceResponse::from(workspace)))
}

/// A workspace: name, settings, the caller's role, members. Non-members get 404.
#[utoipa::path(
    tag = "workspaces",
    security(("session" = []), ("api_token" = ["read"])),
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = WorkspaceResponse),
        (status = 404, description = "workspace_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/workspaces/{id}")]
#[tracing::instrument(skip_all)]
pub async fn show(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let workspace = state
        .app
        .workspaces
        .get(&who, WorkspaceId(path.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(WorkspaceResponse::from(workspace)))
}

#[derive(Deserialize, ToSchema)]
pub struct AddMemberRequest {
    /// The address of an existing account.
    pub email: String,
    pub role: RoleName,
}

/// Add a member (account holders only).
#[utoipa::path(
    tag = "workspaces",
    security(("session" = []), ("api_token" = ["write"])),
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = AddMemberRequest,
    responses(
        (status = 201, body = MemberView),
        (status = 403, description = "account_holder_required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found, account_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already_member", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/workspaces/{id}/members")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn add_member(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
    body: web::Json<AddMemberRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let account_id = state
        .app
        .workspaces
        .add_member(
            &who,
            WorkspaceId(path.into_inner()),
            &body.email,
            body.role.into(),
            &ctx,
        )
        .await?;
    Ok(HttpResponse::Created().json(MemberView {
        account_id: account_id.0,
        role: body.role,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ChangeRoleRequest {
    pub role: RoleName,
}

/// Change a member's role (account holders only; the last account holder stays one).
#[utoipa::path(
    tag = "workspaces",
    security(("session" = []), ("api_token" = ["write"])),
    params(
        ("id" = Uuid, Path, description = "workspace id"),
        ("account_id" = Uuid, Path, description = "member's account id"),
    ),
    request_body = ChangeRoleRequest,
    responses(
        (status = 200, body = MemberView),
        (status = 403, description = "account_holder_required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found, member_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "last_account_holder", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/workspaces/{id}/members/{account_id}")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn change_role(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<ChangeRoleRequest>,
) -> Result<HttpResponse, AppError> {
    let (workspace, account) = path.into_inner();
    let role = body.into_inner().role;
    state
        .app
        .workspaces
        .change_role(
            &who,
            WorkspaceId(workspace),
            AccountId(account),
            role.into(),
            &ctx,
        )
        .await?;
    Ok(HttpResponse::Ok().json(MemberView {
        account_id: account,
        role,
    }))
}

/// Remove a member (account holders only; the last account holder stays).
#[utoipa::path(
    tag = "workspaces",
    security(("session" = []), ("api_token" = ["write"])),
    params(
        ("id" = Uuid, Path, description = "workspace id"),
        ("account_id" = Uuid, Path, description = "member's account id"),
    ),
    responses(
        (status = 204, description = "removed"),
        (status = 403, description = "account_holder_required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found, member_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "last_account_holder", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/workspaces/{id}/members/{account_id}")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn remove_member(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, AppError> {
    let (workspace, account) = path.into_inner();
    state
        .app
        .workspaces
        .remove_member(&who, WorkspaceId(workspace), AccountId(account), &ctx)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct MfaPolicyRequest {
    pub required: bool,
}

/// Require MFA for every member (account holders only). Turning it on ends members' sessions
/// that did not pass a second factor.
#[utoipa::path(
    tag = "workspaces",
    security(("session" = []), ("api_token" = ["write"])),
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = MfaPolicyRequest,
    responses(
        (status = 200, body = WorkspaceResponse),
        (status = 403, description = "account_holder_required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/workspaces/{id}/mfa-policy")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn mfa_policy(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
    body: web::Json<MfaPolicyRequest>,
) -> Result<HttpResponse, AppError> {
    let workspace = state
        .app
        .workspaces
        .require_mfa(&who, WorkspaceId(path.into_inner()), body.required, &ctx)
        .await?;
    Ok(HttpResponse::Ok().json(WorkspaceResponse::from(workspace)))
}

#[derive(Serialize, ToSchema)]
pub struct LastPurge {
    pub at: DateTime<Utc>,
    pub cutoff: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ArchivalResponse {
    pub workspace_id: Uuid,
    /// Conversations are purged after this many days; `null` keeps them forever.
    pub days: Option<u32>,
    /// What a purge covers.
    pub categories: Vec<&'static str>,
    /// The next purge (midnight UTC), when a retention is set.
    pub next_purge_at: Option<DateTime<Utc>>,
    /// That purge removes everything older than this.
    pub cutoff: Option<DateTime<Utc>>,
    /// Due more than a day ago and not acknowledged.
    pub overdue: bool,
    pub last_purge: Option<LastPurge>,
}

impl From<ArchivalRecord> for ArchivalResponse {
    fn from(r: ArchivalRecord) -> Self {
        Self {
            workspace_id: r.workspace_id,
            days: r.days,
            categories: CATEGORIES.to_vec(),
            next_purge_at: r.schedule.map(|s| s.next_purge_at),
            cutoff: r.schedule.map(|s| s.cutoff),
            overdue: r.schedule.is_some_and(|s| s.overdue),
            last_purge: match (r.last_purge_at, r.last_cutoff) {
                (Some(at), Some(cutoff)) => Some(LastPurge { at, cutoff }),
                _ => None,
            },
        }
    }
}

/// The workspace's retention and purge schedule (members).
#[utoipa::path(
    tag = "workspaces",
    security(("session" = []), ("api_token" = ["read"])),
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = ArchivalResponse),
        (status = 404, description = "workspace_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/workspaces/{id}/archival")]
#[tracing::instrument(skip_all)]
pub async fn archival(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let record = state
        .app
        .archival
        .get(&who, WorkspaceId(path.into_inner()))
        .await?;
    Ok(HttpResponse::Ok().json(ArchivalResponse::from(record)))
}

#[derive(Deserialize, ToSchema)]
pub struct ArchivalDaysRequest {
    /// 1 to 3650, or `null` to keep conversations forever.
    #[schema(minimum = 1, maximum = 3650)]
    pub days: Option<u32>,
}

/// Archive conversations after N days (account holders only).
#[utoipa::path(
    tag = "workspaces",
    security(("session" = []), ("api_token" = ["write"])),
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = ArchivalDaysRequest,
    responses(
        (status = 200, body = ArchivalResponse),
        (status = 403, description = "account_holder_required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "archival_days_out_of_range", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/workspaces/{id}/archival")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn set_archival(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
    body: web::Json<ArchivalDaysRequest>,
) -> Result<HttpResponse, AppError> {
    let record = state
        .app
        .archival
        .set_days(&who, WorkspaceId(path.into_inner()), body.days, &ctx)
        .await?;
    Ok(HttpResponse::Ok().json(ArchivalResponse::from(record)))
}

#[derive(Deserialize, IntoParams)]
pub struct ScheduleFilter {
    /// Only purges due at or before this instant.
    pub due_before: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct ScheduleResponse {
    /// Workspaces with a retention, soonest purge first.
    pub workspaces: Vec<ArchivalResponse>,
}

/// The purge schedule across workspaces, for the services that hold conversation data (an API
/// token with the `archival` scope, or a platform admin).
#[utoipa::path(
    tag = "workspaces",
    security(("api_token" = ["archival"]), ("session" = [])),
    params(ScheduleFilter),
    responses(
        (status = 200, body = ScheduleResponse),
        (status = 403, description = "admin_required", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/archival/schedule")]
#[tracing::instrument(skip_all)]
pub async fn schedule(
    state: web::Data<AppState>,
    who: Authenticated,
    filter: web::Query<ScheduleFilter>,
) -> Result<HttpResponse, AppError> {
    let records = state.app.archival.schedule(&who, filter.due_before).await?;
    Ok(HttpResponse::Ok().json(ScheduleResponse {
        workspaces: records.into_iter().map(ArchivalResponse::from).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PurgeRequest {
    /// Everything older than this was purged.
    pub cutoff: DateTime<Utc>,
    /// How much of each category was removed.
    #[schema(example = json!({"messages": 1200, "attachments_and_media": 40}))]
    pub counts: BTreeMap<String, u64>,
}

/// A data service acknowledges a purge it executed.
#[utoipa::path(
    tag = "workspaces",
    security(("api_token" = ["archival"]), ("session" = [])),
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = PurgeRequest,
    responses(
        (status = 201, body = ArchivalResponse),
        (status = 403, description = "admin_required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "archival_off", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "cutoff_in_future", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/workspaces/{id}/archival/purges")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn record_purge(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
    body: web::Json<PurgeRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let record = state
        .app
        .archival
        .record_purge(
            &who,
            WorkspaceId(path.into_inner()),
            body.cutoff,
            body.counts,
            &ctx,
        )
        .await?;
    Ok(HttpResponse::Created().json(ArchivalResponse::from(record)))
}
