//! `audit_log_v1`: one entry per security-relevant event — who, what, on whom, in which
//! workspace, with what outcome and why, from where — in commit order.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;
use warden_aggregates::account::AccountEvent;
use warden_aggregates::workspace::WorkspaceEvent;

use crate::projector::{ProjectionError, Projector, StoredEvent};

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
    AccountEvent::TOTP_ENROLMENT_STARTED,
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
    WorkspaceEvent::CREATED,
    WorkspaceEvent::MEMBER_ADDED,
    WorkspaceEvent::ROLE_CHANGED,
    WorkspaceEvent::MEMBER_REMOVED,
    WorkspaceEvent::MFA_POLICY_CHANGED,
    WorkspaceEvent::ARCHIVAL_DAYS_SET,
    WorkspaceEvent::PURGE_RECORDED,
];

/// `failure` for a wrong credential, `refused` for a lock or limit, `success` otherwise.
fn outcome(event_type: &str) -> &'static str {
    if event_type.ends_with(".check_failed") || event_type == AccountEvent::EMAIL_CODE_REJECTED {
        "failure"
    } else if event_type.ends_with("locked_out")
        || event_type == AccountEvent::PIN_LOCKED
        || event_type == AccountEvent::API_TOKEN_RATE_LIMITED
    {
        "refused"
    } else {
        "success"
    }
}

/// The payload's reason-like field, if it has one (`purpose`, `reason`, `via`, `method`).
fn reason(payload: &Value) -> Option<String> {
    let body = payload.as_object()?.values().next()?;
    ["reason", "purpose", "via"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

fn method(payload: &Value) -> Option<String> {
    let body = payload.as_object()?.values().next()?;
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
        let aggregate = Uuid::parse_str(&event.aggregate_id).ok();
        let (subject, workspace) = match event.aggregate_type.as_str() {
            "workspace" => {
                let member = event
                    .payload
                    .as_object()
                    .and_then(|o| o.values().next())
                    .and_then(|b| b.get("account_id"))
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok());
                (member, aggregate)
            }
            _ => (aggregate, None),
        };
        let at = event
            .payload
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|b| b.get("at").or_else(|| b.get("started_at")))
            .and_then(|v| serde_json::from_value::<chrono::DateTime<chrono::Utc>>(v.clone()).ok());
        sqlx::query(
            "INSERT INTO audit_log_v1 (transaction_id, global_position, at, action, outcome,
                 reason, actor, subject, workspace_id, method, ip, user_agent, request_id)
             VALUES ($1::text::xid8, $2, COALESCE($3, now()), $4, $5, $6, $7, $8, $9, $10, $11,
                     $12, $13)
             ON CONFLICT (transaction_id, global_position) DO NOTHING",
        )
        .bind(event.cursor.transaction_id.to_string())
        .bind(event.cursor.global_position)
        .bind(at)
        .bind(&event.event_type)
        .bind(outcome(&event.event_type))
        .bind(reason(&event.payload))
        .bind(event.metadata_str("actor").unwrap_or("anonymous"))
        .bind(subject)
        .bind(workspace)
        .bind(
            method(&event.payload).or_else(|| event.metadata_str("auth_method").map(str::to_owned)),
        )
        .bind(event.metadata_str("ip"))
        .bind(event.metadata_str("user_agent"))
        .bind(event.metadata_str("request_id"))
        .execute(&mut *conn)
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
    }

    #[test]
    fn each_audited_type_is_listed_once() {
        let mut types = AUDITED.to_vec();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), AUDITED.len());
        assert!(AUDITED
            .iter()
            .all(|t| t.starts_with("account.") || t.starts_with("workspace.")));
    }
}
