//! `audit_log_v1`: one entry per security-relevant event — who, what, on whom, in which
//! workspace, with what outcome and why, from where — in commit order.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;
use warden_aggregates::account::AccountEvent;
use warden_aggregates::identity_provider::IdentityProviderEvent;
use warden_aggregates::workspace::WorkspaceEvent;

use crate::runtime::projector::{event_body, ProjectionError, Projector, StoredEvent};

pub struct AuditLog;

/// Every event type Warden records is audited.
const AUDITED: &[&str] = &[
    AccountEvent::REGISTERED,
    AccountEvent::PASSWORD_CHECK_FAILED,
    AccountEvent::LOCKED_OUT,
    AccountEvent::SESSION_STARTED,
    AccountEvent::SESSION_ENDED,
    AccountEvent::PASSWORD_CHANGED,
    AccountEvent::PASSWORD_RESET_REQUESTED,
    AccountEvent::API_TOKEN_CREATED,
    AccountEvent::API_TOKEN_FIRST_USED,
    AccountEvent::API_TOKEN_EXPIRED,
    AccountEvent::API_TOKEN_RATE_LIMITED,
    AccountEvent::API_TOKEN_REVOKED,
    AccountEvent::TOTP_ENROLLMENT_STARTED,
    AccountEvent::TOTP_CONFIRMED,
    AccountEvent::TOTP_DISABLED,
    AccountEvent::RECOVERY_CODES_REPLACED,
    AccountEvent::MFA_CHALLENGE_ISSUED,
    AccountEvent::MFA_CHECK_FAILED,
    AccountEvent::MFA_LOCKED_OUT,
    AccountEvent::TOTP_STEP_ACCEPTED,
    AccountEvent::RECOVERY_CODE_USED,
    AccountEvent::MFA_PASSED,
    AccountEvent::ADMIN_GRANTED,
    AccountEvent::AUDITOR_GRANTED,
    AccountEvent::AUDITOR_REVOKED,
    AccountEvent::ERASED,
    AccountEvent::EMAIL_CODE_SENT,
    AccountEvent::EMAIL_CODE_REJECTED,
    AccountEvent::EMAIL_MFA_ENABLED,
    AccountEvent::EMAIL_MFA_DISABLED,
    AccountEvent::ACCESS_REQUESTED,
    AccountEvent::PIN_SET,
    AccountEvent::PIN_REMOVED,
    AccountEvent::PIN_VERIFIED,
    AccountEvent::PIN_CHECK_FAILED,
    AccountEvent::PIN_LOCKED,
    AccountEvent::ACCESS_REQUEST_DECIDED,
    AccountEvent::UNLOCKED,
    AccountEvent::MFA_RESET,
    AccountEvent::REGISTERED_THROUGH_PROVIDER,
    AccountEvent::IDENTITY_LINK_STARTED,
    AccountEvent::IDENTITY_LINKED,
    AccountEvent::IDENTITY_UNLINKED,
    IdentityProviderEvent::CONFIGURED,
    IdentityProviderEvent::CHANGED,
    IdentityProviderEvent::REMOVED,
    IdentityProviderEvent::SIGN_IN_REFUSED,
    WorkspaceEvent::CREATED,
    WorkspaceEvent::MEMBER_ADDED,
    WorkspaceEvent::ROLE_CHANGED,
    WorkspaceEvent::MEMBER_REMOVED,
    WorkspaceEvent::MFA_POLICY_CHANGED,
    WorkspaceEvent::ARCHIVAL_DAYS_SET,
    WorkspaceEvent::PURGE_RECORDED,
];

/// `failure` for a wrong credential, `refused` for a lock or limit, `success` otherwise: the
/// domain lists which events are which.
fn outcome(event_type: &str) -> &'static str {
    if AccountEvent::FAILED_CHECKS.contains(&event_type) {
        "failure"
    } else if AccountEvent::REFUSALS.contains(&event_type)
        || event_type == IdentityProviderEvent::SIGN_IN_REFUSED
    {
        "refused"
    } else {
        "success"
    }
}

/// The payload's reason-like field, if it has one (`purpose`, `reason`, `via`, `method`).
fn reason(payload: &Value) -> Option<String> {
    let body = event_body(payload)?;
    ["reason", "purpose", "via"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

fn method(payload: &Value) -> Option<String> {
    let body = event_body(payload)?;
    body.get("method")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[async_trait]
impl Projector for AuditLog {
    fn name(&self) -> &'static str {
        "audit_log_v1"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_log_v1"]
    }

    fn event_types(&self) -> &'static [&'static str] {
        AUDITED
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// Append-only: a batch is one INSERT.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut rows = Entries::default();
        for event in events {
            rows.push(event);
        }
        rows.insert(conn).await?;
        Ok(())
    }
}

/// Audit entries as columns, for one `INSERT ... SELECT FROM UNNEST`.
#[derive(Default)]
struct Entries {
    transaction_ids: Vec<String>,
    positions: Vec<i64>,
    at: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    actions: Vec<String>,
    outcomes: Vec<&'static str>,
    reasons: Vec<Option<String>>,
    actors: Vec<String>,
    subjects: Vec<Option<Uuid>>,
    workspaces: Vec<Option<Uuid>>,
    methods: Vec<Option<String>>,
    ips: Vec<Option<String>>,
    user_agents: Vec<Option<String>>,
    request_ids: Vec<Option<String>>,
}

impl Entries {
    fn push(&mut self, event: &StoredEvent) {
        let aggregate = Uuid::parse_str(&event.aggregate_id).ok();
        let body = event_body(&event.payload);
        let (subject, workspace) = match event.aggregate_type.as_str() {
            "workspace" => {
                let member = body
                    .and_then(|b| b.get("account_id"))
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok());
                (member, aggregate)
            }
            _ => (aggregate, None),
        };
        let at = body
            .and_then(|b| b.get("at").or_else(|| b.get("started_at")))
            .and_then(|v| chrono::DateTime::deserialize(v).ok());
        let text = |key: &str| event.metadata_str(key).map(str::to_owned);
        self.transaction_ids
            .push(event.cursor.transaction_id.to_string());
        self.positions.push(event.cursor.global_position);
        self.at.push(at);
        self.actions.push(event.event_type.clone());
        self.outcomes.push(outcome(&event.event_type));
        self.reasons.push(reason(&event.payload));
        self.actors
            .push(text("actor").unwrap_or_else(|| "anonymous".into()));
        self.subjects.push(subject);
        self.workspaces.push(workspace);
        self.methods
            .push(method(&event.payload).or_else(|| text("auth_method")));
        self.ips.push(text("ip"));
        self.user_agents.push(text("user_agent"));
        self.request_ids.push(text("request_id"));
    }

    async fn insert(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.positions.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO audit_log_v1 (transaction_id, global_position, at, action, outcome,
                 reason, actor, subject, workspace_id, method, ip, user_agent, request_id)
             SELECT t::xid8, p, COALESCE(a, now()), ac, o, r, act, s, w, m, i, u, q
             FROM UNNEST($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::uuid[], $9::uuid[], $10::text[], $11::text[],
                         $12::text[], $13::text[])
                  AS e(t, p, a, ac, o, r, act, s, w, m, i, u, q)
             ON CONFLICT (transaction_id, global_position) DO NOTHING",
        )
        .bind(&self.transaction_ids)
        .bind(&self.positions)
        .bind(&self.at)
        .bind(&self.actions)
        .bind(&self.outcomes)
        .bind(&self.reasons)
        .bind(&self.actors)
        .bind(&self.subjects)
        .bind(&self.workspaces)
        .bind(&self.methods)
        .bind(&self.ips)
        .bind(&self.user_agents)
        .bind(&self.request_ids)
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_refusals_and_successes_are_told_apart() {
        assert_eq!(outcome(AccountEvent::PASSWORD_CHECK_FAILED), "failure");
        assert_eq!(outcome(AccountEvent::MFA_CHECK_FAILED), "failure");
        assert_eq!(outcome(AccountEvent::LOCKED_OUT), "refused");
        assert_eq!(outcome(AccountEvent::MFA_LOCKED_OUT), "refused");
        assert_eq!(outcome(AccountEvent::API_TOKEN_RATE_LIMITED), "refused");
        assert_eq!(outcome(AccountEvent::SESSION_STARTED), "success");
        assert_eq!(outcome(IdentityProviderEvent::SIGN_IN_REFUSED), "refused");
    }

    #[test]
    fn each_audited_type_is_listed_once() {
        let mut types = AUDITED.to_vec();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), AUDITED.len());
        assert!(AUDITED
            .iter()
            .all(|t| ["account.", "workspace.", "identity_provider."]
                .iter()
                .any(|prefix| t.starts_with(prefix))));
    }
}
