//! The audit log for auditors (platform admins, `audit:read` tokens) and for a workspace's
//! account holders and supervisors: filtered, newest first, cursor-paginated, exportable.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::shared::{Scope, SealedText, WorkspaceId};
use warden_aggregates::workspace::Role;
use warden_projections::audit_chain::{self, TrustedKeys, Verification};
use warden_projections::queries::audit_log::{self, AuditFilter, Series};
use warden_projections::Cursor;

use super::command::Commands;
use super::context::{Authenticated, Credential};
use super::directory::Directory;
use super::error::AppError;
use super::personal::Personal;
use super::problem::ProblemCode;
use crate::adapters::sealing::DataKey;

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
    pub ip: Option<Personal>,
    pub user_agent: Option<Personal>,
    pub request_id: Option<String>,
}

pub const PAGE_MAX: i64 = 500;

/// Platform auditors and admins (a session, or a token of theirs with `admin`), and API tokens
/// with `audit:read`. Read from the account as it is now, so a revoked role is refused at once.
pub async fn require_auditor(commands: &Commands, who: &Authenticated) -> Result<(), AppError> {
    match &who.credential {
        Credential::ApiToken { scopes, .. } if scopes.contains(&Scope::AuditRead) => Ok(()),
        Credential::ApiToken { .. } => commands.require_admin(who).await,
        Credential::Session(_) => {
            who.require(Scope::Read)?;
            let account = commands.load_account(who.account_id).await?;
            if account.is_admin() || account.is_auditor() {
                Ok(())
            } else {
                Err(AppError::new(ProblemCode::AuditorRequired))
            }
        }
    }
}

#[derive(Clone)]
pub struct Audit {
    commands: Commands,
    directory: Directory,
    pool: PgPool,
}

impl Audit {
    pub fn new(commands: Commands, directory: Directory, pool: PgPool) -> Self {
        Self {
            commands,
            directory,
            pool,
        }
    }

    pub async fn require_auditor(&self, who: &Authenticated) -> Result<(), AppError> {
        require_auditor(&self.commands, who).await
    }

    /// Account holders and supervisors of the workspace.
    pub async fn require_workspace_auditor(
        &self,
        who: &Authenticated,
        id: WorkspaceId,
    ) -> Result<(), AppError> {
        who.require(Scope::Read)?;
        let workspace = self.commands.load_workspace(id).await?;
        match workspace.role_of(who.account_id) {
            Some(Role::AccountHolder | Role::Supervisor) => Ok(()),
            Some(Role::Agent) => Err(AppError::with(
                ProblemCode::SupervisorRequired,
                "account holders and supervisors read the workspace audit log",
            )),
            None => Err(AppError::new(ProblemCode::WorkspaceNotFound)),
        }
    }

    /// The whole chain checked against the keys this server trusts.
    pub async fn verify_chain(
        &self,
        who: &Authenticated,
        keys: TrustedKeys,
    ) -> Result<Verification, AppError> {
        self.require_auditor(who).await?;
        let verification = audit_chain::verify(&self.pool, keys).await?;
        if !verification.ok {
            tracing::error!(
                first_bad_position = verification.first_bad_position.as_deref().unwrap_or(""),
                problem = verification.problem.as_deref().unwrap_or(""),
                "the audit chain does not verify"
            );
        }
        Ok(verification)
    }

    /// Sign-ins, failures, locks and revocations per UTC day over the last `days` days.
    pub async fn daily(
        &self,
        who: &Authenticated,
        days: i64,
    ) -> Result<Vec<(NaiveDate, Series, i64)>, AppError> {
        self.require_auditor(who).await?;
        let today = self.commands.clock().now().date_naive();
        let from = (today - chrono::Duration::days(days - 1)).and_time(chrono::NaiveTime::MIN);
        Ok(audit_log::daily_counts(&self.pool, from.and_utc()).await?)
    }

    /// One page, newest first, strictly before `before`.
    pub async fn page(
        &self,
        filter: &AuditFilter,
        before: Option<Cursor>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AppError> {
        let rows = audit_log::page(&self.pool, filter, before, limit.clamp(1, PAGE_MAX)).await?;
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
                    let key = self.directory.keys().get(*owner).await?;
                    keys.insert(*owner, key);
                }
            }
            let open = |sealed: Option<String>| {
                let usable = owners
                    .iter()
                    .filter_map(|o| keys.get(o).and_then(Option::as_ref));
                sealed.map(|s| Personal::open(usable, &SealedText(s)))
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
