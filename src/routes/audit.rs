use actix_web::web::Bytes;
use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use warden_aggregates::shared::WorkspaceId;

use crate::accounts::Authenticated;
use crate::audit::{parse_cursor, AuditEntry, AuditFilter, PAGE_MAX};
use crate::error::{AppError, Problem};
use crate::startup::AppState;

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Account id of who acted (`anonymous` for unauthenticated requests).
    pub actor: Option<String>,
    /// Account the event is about.
    pub subject: Option<Uuid>,
    /// A stable dotted event name, e.g. `account.session.started`.
    pub action: Option<String>,
    /// `success`, `failure` or `refused`.
    pub outcome: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub workspace: Option<Uuid>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 500, default 100.
    pub limit: Option<i64>,
}

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            actor: self.actor.clone(),
            subject: self.subject,
            action: self.action.clone(),
            outcome: self.outcome.clone(),
            from: self.from,
            to: self.to,
            workspace: self.workspace,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    pub position: String,
    pub at: DateTime<Utc>,
    pub action: String,
    /// `success`, `failure` or `refused`.
    pub outcome: String,
    pub reason: Option<String>,
    pub actor: String,
    pub subject: Option<Uuid>,
    pub workspace_id: Option<Uuid>,
    pub method: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        Self {
            position: e.cursor.to_string(),
            at: e.at,
            action: e.action,
            outcome: e.outcome,
            reason: e.reason,
            actor: e.actor,
            subject: e.subject,
            workspace_id: e.workspace_id,
            method: e.method,
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next: Option<String>,
}

async fn page(
    state: &AppState,
    query: &AuditQuery,
    filter: AuditFilter,
) -> Result<HttpResponse, AppError> {
    let before = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let limit = query.limit.unwrap_or(100).clamp(1, PAGE_MAX);
    let entries = state.accounts.audit_page(&filter, before, limit).await?;
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.cursor.to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(AuditPage {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
        next,
    }))
}

/// The audit log (platform admins, `audit:read` tokens).
#[utoipa::path(
    tag = "audit",
    security(("session" = []), ("api_token" = ["audit:read"])),
    params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, description = "invalid_cursor, malformed_query", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "admin_required", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/audit")]
#[tracing::instrument(skip_all)]
pub async fn log(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    state.accounts.require_auditor(&who).await?;
    page(&state, &query, query.filter()).await
}

/// A workspace's audit log (its account holders and supervisors).
#[utoipa::path(
    tag = "audit",
    security(("session" = []), ("api_token" = ["read"])),
    params(("id" = Uuid, Path, description = "workspace id"), AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, description = "invalid_cursor, malformed_query", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "supervisor_required", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "workspace_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/workspaces/{id}/audit")]
#[tracing::instrument(skip_all)]
pub async fn workspace_log(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<Uuid>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    state
        .accounts
        .require_workspace_auditor(&who, WorkspaceId(id))
        .await?;
    let filter = AuditFilter {
        workspace: Some(id),
        ..query.filter()
    };
    page(&state, &query, filter).await
}

/// The audit log as NDJSON, streamed page by page (constant memory), same filters.
#[utoipa::path(
    tag = "audit",
    security(("session" = []), ("api_token" = ["audit:read"])),
    params(AuditQuery),
    responses(
        (status = 200, description = "one JSON entry per line, newest first", content_type = "application/x-ndjson"),
        (status = 403, description = "admin_required", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/audit/export")]
#[tracing::instrument(skip_all)]
pub async fn export(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    state.accounts.require_auditor(&who).await?;
    let filter = query.filter();
    let start = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let pages = stream::unfold(
        (state.into_inner(), filter, start, false),
        |(state, filter, before, done)| async move {
            if done {
                return None;
            }
            match state.accounts.audit_page(&filter, before, PAGE_MAX).await {
                Ok(entries) => {
                    let last = entries.last().map(|e| e.cursor);
                    let finished = (entries.len() as i64) < PAGE_MAX;
                    let mut chunk = Vec::new();
                    for entry in entries {
                        if let Ok(line) = serde_json::to_vec(&AuditEntryView::from(entry)) {
                            chunk.extend_from_slice(&line);
                            chunk.push(b'\n');
                        }
                    }
                    if chunk.is_empty() && finished {
                        return None;
                    }
                    let next = (state, filter, last.or(before), finished);
                    Some((Ok::<Bytes, AppError>(Bytes::from(chunk)), next))
                }
                Err(error) => Some((Err(error), (state, filter, before, true))),
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(pages))
}
