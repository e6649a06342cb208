//! The audit log for auditors (platform admins, `audit:read` tokens) and for a workspace's
//! account holders and supervisors: filtered, newest first, cursor-paginated, exportable.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use warden_aggregates::shared::{ErrorKind, Scope, SealedText, WorkspaceId};
use warden_aggregates::workspace::{Role, Workspace};
use warden_projections::Cursor;

use crate::accounts::{AccountsService, Authenticated, Credential};
use crate::adapters::sealing::DataKey;
use crate::error::AppError;

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub subject: Option<Uuid>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub workspace: Option<Uuid>,
}

pub struct AuditEntry {
    pub cursor: Cursor,
    pub at: DateTime<Utc>,
    pub action: String,
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

#[derive(sqlx::FromRow)]
struct AuditRow {
    transaction_id: String,
    global_position: i64,
    at: DateTime<Utc>,
    action: String,
    outcome: String,
    reason: Option<String>,
    actor: String,
    subject: Option<Uuid>,
    workspace_id: Option<Uuid>,
    method: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

pub const PAGE_MAX: i64 = 500;

pub fn parse_cursor(text: &str) -> Result<Cursor, AppError> {
    text.parse().map_err(|_| AppError::Malformed {
        code: "invalid_cursor",
        detail: "the cursor is not one this API returned".into(),
    })
}

impl AccountsService {
    /// Platform admins and API tokens with `audit:read`.
    pub async fn require_auditor(&self, who: &Authenticated) -> Result<(), AppError> {
        match &who.credential {
            Credential::ApiToken { scopes, .. } if scopes.contains(&Scope::AuditRead) => Ok(()),
            _ => self.require_admin(who).await,
        }
    }

    /// Account holders and supervisors of the workspace.
    pub async fn require_workspace_auditor(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
    ) -> Result<(), AppError> {
        who.require(Scope::Read)?;
        let (workspace, _) = self
            .store()
            .load::<Workspace>(&id.to_string())
            .await
            .map_err(AppError::from)?;
        match workspace.role_of(who.account_id) {
            Some(Role::AccountHolder | Role::Supervisor) => Ok(()),
            Some(Role::Agent) => Err(AppError::rejected(
                ErrorKind::Forbidden,
                "supervisor_required",
                "account holders and supervisors read the workspace audit log",
            )),
            None => Err(AppError::rejected(
                ErrorKind::NotFound,
                "workspace_not_found",
                "no such workspace",
            )),
        }
    }

    /// One page, newest first, strictly before `before`.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        before: Option<Cursor>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AppError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT transaction_id::text AS transaction_id, global_position, at, action, outcome,
                    reason, actor, subject, workspace_id, method, ip, user_agent, request_id
             FROM audit_log_v1
             WHERE ($1::text IS NULL OR actor = $1)
               AND ($2::uuid IS NULL OR subject = $2)
               AND ($3::text IS NULL OR action = $3)
               AND ($4::text IS NULL OR outcome = $4)
               AND ($5::timestamptz IS NULL OR at >= $5)
               AND ($6::timestamptz IS NULL OR at < $6)
               AND ($7::uuid IS NULL OR workspace_id = $7)
               AND ($8::text IS NULL
                    OR (transaction_id, global_position) < ($8::text::xid8, $9))
             ORDER BY audit_log_v1.transaction_id DESC, audit_log_v1.global_position DESC
             LIMIT $10",
        )
        .bind(&filter.actor)
        .bind(filter.subject)
        .bind(&filter.action)
        .bind(&filter.outcome)
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.workspace)
        .bind(before.map(|c| c.transaction_id.to_string()))
        .bind(before.map_or(0, |c| c.global_position))
        .bind(limit.clamp(1, PAGE_MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut keys: HashMap<Uuid, Option<DataKey>> = HashMap::new();
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            // Request metadata is sealed under the actor's key, or the subject's when the actor
            // was anonymous (a reset request).
            let owners: Vec<Uuid> = Uuid::parse_str(&row.actor)
                .ok()
                .into_iter()
                .chain(row.subject)
                .collect();
            for owner in &owners {
                if !keys.contains_key(owner) {
                    let key = self.keys.get(*owner).await?;
                    keys.insert(*owner, key);
                }
            }
            let open = |sealed: Option<String>| -> Option<String> {
                let sealed = SealedText(sealed?);
                Some(
                    owners
                        .iter()
                        .filter_map(|o| keys.get(o).and_then(Option::as_ref))
                        .find_map(|k| k.open(&sealed).ok())
                        .unwrap_or_else(|| "erased".to_string()),
                )
            };
            entries.push(AuditEntry {
                cursor: Cursor {
                    transaction_id: row.transaction_id.parse().unwrap_or_default(),
                    global_position: row.global_position,
                },
                at: row.at,
                action: row.action,
                outcome: row.outcome,
                reason: row.reason,
                subject: row.subject,
                workspace_id: row.workspace_id,
                method: row.method,
                ip: open(row.ip),
                user_agent: open(row.user_agent),
                request_id: row.request_id,
                actor: row.actor,
            });
        }
        Ok(entries)
    }
}
