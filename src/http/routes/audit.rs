use actix_web::web::Bytes;
use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use warden_aggregates::shared::WorkspaceId;

use crate::app::audit::{AuditEntry, PAGE_MAX};
use crate::app::stream::parse_cursor;
use crate::app::AppError;
use crate::app::Authenticated;
use crate::http::error::Problem;
use crate::startup::AppState;
use warden_projections::queries::audit_log::AuditFilter;
use warden_projections::Cursor;

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
    pub fn filter(&self) -> AuditFilter {
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
            ip: e.ip.map(crate::app::Personal::into_text),
            user_agent: e.user_agent.map(crate::app::Personal::into_text),
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
    let entries = state.app.audit.page(&filter, before, limit).await?;
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
        (status = 403, description = "auditor_required, admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/audit")]
#[tracing::instrument(skip_all)]
pub async fn log(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    state.app.audit.require_auditor(&who).await?;
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
        .app
        .audit
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
        (status = 403, description = "auditor_required, admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/audit/export")]
#[tracing::instrument(skip_all)]
pub async fn export(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    state.app.audit.require_auditor(&who).await?;
    let start = query.cursor.as_deref().map(parse_cursor).transpose()?;
    Ok(ndjson(state, query.filter(), start))
}

/// The audit log from `start` (newest first) as NDJSON, one entry a line, streamed page by
/// page; the caller has checked that the reader is an auditor.
pub fn ndjson(
    state: web::Data<AppState>,
    filter: AuditFilter,
    start: Option<Cursor>,
) -> HttpResponse {
    let pages = stream::unfold(
        (state.into_inner(), filter, start, false),
        |(state, filter, before, done)| async move {
            if done {
                return None;
            }
            match state.app.audit.page(&filter, before, PAGE_MAX).await {
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
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(pages)
}

#[derive(Serialize, ToSchema)]
pub struct HistoryEntryView {
    pub sequence: i64,
    pub position: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: String,
    /// The event's fields: secrets' stored forms redacted, personal data opened.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryResponse {
    pub account_id: Uuid,
    /// Oldest first.
    pub events: Vec<HistoryEntryView>,
}

/// An account's events in order (platform admins, `audit:read` tokens).
#[utoipa::path(
    tag = "audit",
    security(("session" = []), ("api_token" = ["audit:read"])),
    params(("id" = Uuid, Path, description = "account id")),
    responses(
        (status = 200, body = HistoryResponse),
        (status = 403, description = "auditor_required, admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "account_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/accounts/{id}/history")]
#[tracing::instrument(skip_all)]
pub async fn history(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let account_id = path.into_inner();
    let events = state.app.history.account_history(&who, account_id).await?;
    Ok(HttpResponse::Ok().json(HistoryResponse {
        account_id,
        events: events
            .into_iter()
            .map(|e| HistoryEntryView {
                sequence: e.sequence,
                position: e.position,
                event_type: e.event_type,
                version: e.event_version,
                data: e.data,
                metadata: e.metadata,
            })
            .collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct StateQuery {
    /// The instant to rebuild the state at (RFC 3339).
    pub at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountStateResponse {
    pub account_id: Uuid,
    pub at: DateTime<Utc>,
    pub events_applied: usize,
    pub registered: bool,
    pub mfa_methods: Vec<&'static str>,
    pub recovery_codes_remaining: usize,
    pub locked: bool,
    pub live_sessions: usize,
    pub live_api_tokens: usize,
    pub is_admin: bool,
}

/// An account's security state rebuilt from its events as of an instant.
#[utoipa::path(
    tag = "audit",
    security(("session" = []), ("api_token" = ["audit:read"])),
    params(("id" = Uuid, Path, description = "account id"), StateQuery),
    responses(
        (status = 200, body = AccountStateResponse),
        (status = 403, description = "auditor_required, admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "account_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/accounts/{id}/state")]
#[tracing::instrument(skip_all)]
pub async fn state_at(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<Uuid>,
    query: web::Query<StateQuery>,
) -> Result<HttpResponse, AppError> {
    let account_id = path.into_inner();
    let s = state
        .app
        .history
        .account_state_at(&who, account_id, query.at)
        .await?;
    Ok(HttpResponse::Ok().json(AccountStateResponse {
        account_id,
        at: s.at,
        events_applied: s.events_applied,
        registered: s.registered,
        mfa_methods: s.mfa_methods,
        recovery_codes_remaining: s.recovery_codes_remaining,
        locked: s.locked,
        live_sessions: s.live_sessions,
        live_api_tokens: s.live_api_tokens,
        is_admin: s.is_admin,
    }))
}
