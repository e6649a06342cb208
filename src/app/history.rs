//! For auditors: an account's events in order (secrets redacted, personal data opened), and its
//! security state rebuilt as of any instant.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::account::{Account, AccountEvent};
use warden_aggregates::shared::SealedText;
use warden_projections::audit_chain::SECRET_FIELDS;
use warden_projections::{event_body, queries};

use super::audit::require_auditor;
use super::command::Commands;
use super::context::Authenticated;
use super::directory::Directory;
use super::error::AppError;
use super::personal::Personal;
use super::problem::ProblemCode;
use crate::adapters::sealing::DataKey;

/// Payload and metadata fields sealed under the account's key.
pub const SEALED_FIELDS: [&str; 8] = [
    "email",
    "passkey_name",
    "subject",
    "display_name",
    "device",
    "reason",
    "ip",
    "user_agent",
];

pub struct HistoryEntry {
    pub sequence: i64,
    pub position: String,
    pub event_type: String,
    pub event_version: String,
    pub data: Value,
    pub metadata: Value,
}

pub struct StateAt {
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

/// Replaces the stored forms of secrets with `[redacted]` and opens sealed personal data with the
/// first of `keys` that can (`erased` when none can: the owner's key was destroyed). With no keys
/// at all (`None`), sealed values read `[sealed]`.
pub(crate) fn redact(value: &mut Value, keys: Option<&[&DataKey]>) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    for (name, field) in object.iter_mut() {
        if SECRET_FIELDS.contains(&name.as_str()) {
            *field = Value::String("[redacted]".into());
        } else if SEALED_FIELDS.contains(&name.as_str()) && field.is_string() {
            let text = field.as_str().unwrap_or_default().to_string();
            // A sealed value is base64 of a nonce and a tag at least: 40 characters or more. Other
            // strings under these names are plain (an enum such as a session's end reason).
            let looks_sealed = text.len() >= 40
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
            if looks_sealed {
                let sealed = SealedText(text);
                *field = Value::String(match keys {
                    Some(keys) => Personal::open(keys.iter().copied(), &sealed).into_text(),
                    None => "[sealed]".into(),
                });
            }
        } else if field.is_object() {
            redact(field, keys);
        }
    }
}

/// When an event happened, from its payload.
pub(crate) fn event_time(payload: &Value) -> Option<DateTime<Utc>> {
    let body = event_body(payload)?;
    let at = body.get("at").or_else(|| body.get("started_at"))?;
    serde_json::from_value(at.clone()).ok()
}

#[derive(Clone)]
pub struct History {
    commands: Commands,
    directory: Directory,
    pool: PgPool,
}

impl History {
    pub fn new(commands: Commands, directory: Directory, pool: PgPool) -> Self {
        Self {
            commands,
            directory,
            pool,
        }
    }

    async fn account_events(
        &self,
        account_id: Uuid,
    ) -> Result<Vec<queries::events::AggregateEvent>, AppError> {
        let rows =
            queries::events::of_aggregate(&self.pool, "account", &account_id.to_string()).await?;
        if rows.is_empty() {
            return Err(AppError::new(ProblemCode::AccountNotFound));
        }
        Ok(rows)
    }

    pub async fn account_history(
        &self,
        who: &Authenticated,
        account_id: Uuid,
    ) -> Result<Vec<HistoryEntry>, AppError> {
        require_auditor(&self.commands, who).await?;
        let rows = self.account_events(account_id).await?;
        let key = self.directory.keys().get(account_id).await?;
        let keys: Vec<&DataKey> = key.iter().collect();
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut data = event_body(&row.payload)
                    .cloned()
                    .unwrap_or(Value::Object(Map::new()));
                redact(&mut data, Some(&keys));
                let mut metadata = row.metadata;
                redact(&mut metadata, Some(&keys));
                HistoryEntry {
                    sequence: row.sequence,
                    position: format!("{}.{}", row.transaction_id, row.global_position),
                    event_type: row.event_type,
                    event_version: row.event_version,
                    data,
                    metadata,
                }
            })
            .collect())
    }

    pub async fn account_state_at(
        &self,
        who: &Authenticated,
        account_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<StateAt, AppError> {
        require_auditor(&self.commands, who).await?;
        let rows = self.account_events(account_id).await?;
        let mut account = Account::default();
        let mut applied = 0;
        for row in rows {
            if event_time(&row.payload).is_some_and(|t| t > at) {
                break;
            }
            let event: AccountEvent =
                serde_json::from_value(row.payload).map_err(AppError::internal)?;
            account.apply(event);
            applied += 1;
        }
        Ok(StateAt {
            at,
            events_applied: applied,
            registered: account.id().is_some(),
            mfa_methods: account
                .mfa_methods()
                .into_iter()
                .map(|m| m.as_str())
                .filter(|m| *m != "recovery_code")
                .collect(),
            recovery_codes_remaining: account.recovery_codes_remaining(),
            locked: account.is_locked(at),
            live_sessions: account
                .sessions()
                .filter(|(_, s)| s.expires_at > at)
                .count(),
            live_api_tokens: account
                .api_tokens()
                .filter(|(_, t)| t.expires_at.is_none_or(|e| e > at))
                .count(),
            is_admin: account.is_admin(),
        })
    }
}
