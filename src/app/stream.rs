//! The global event stream for data teams: every stored event in commit order, as CloudEvents
//! 1.0 JSON, with secrets' stored forms redacted and personal data opened for the reader
//! (`erased` once the owner's key is destroyed). `docs/events.md` documents the envelope.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;
use warden_aggregates::shared::Scope;
use warden_projections::audit_chain::SECRET_FIELDS;
use warden_projections::queries::events::{streamed_after, StreamedEvent};
use warden_projections::{event_body, Cursor, StoredEvent};

use super::command::Commands;
use super::context::{Authenticated, Credential};
use super::directory::Directory;
use super::error::AppError;
use super::history::{redact, SEALED_FIELDS};
use super::problem::ProblemCode;
use crate::adapters::sealing::DataKey;

pub const PAGE_MAX: i64 = 1000;
pub const SOURCE: &str = "/warden";

/// One event as the stream shows it (CloudEvents 1.0, structured JSON mode).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: &'static str,
    /// Unique and stable: `<aggregate type>:<aggregate id>:<sequence>`. Consumers de-duplicate
    /// on it.
    pub id: String,
    /// `/warden/accounts` or `/warden/workspaces`.
    pub source: String,
    /// The stable dotted event name, e.g. `account.session.started`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: Option<DateTime<Utc>>,
    /// The account or workspace id the event belongs to.
    pub subject: String,
    /// Always `application/json`.
    pub datacontenttype: &'static str,
    /// The event's fields.
    #[schema(value_type = Value)]
    pub data: Box<RawValue>,
    /// Where the event stands in commit order; pass as `after` to read on from it.
    pub position: String,
    /// The payload's schema version.
    pub dataversion: String,
    /// Who caused the event: an account id, or `anonymous`.
    pub actor: Option<String>,
    pub requestid: Option<String>,
    /// `password`, `session`, `api_token`, ... when the request was authenticated.
    pub authmethod: Option<String>,
    pub ip: Option<String>,
    pub useragent: Option<String>,
}

pub fn parse_cursor(text: &str) -> Result<Cursor, AppError> {
    text.parse()
        .map_err(|_| AppError::new(ProblemCode::InvalidCursor))
}

/// An event in the stream's envelope. Sealed personal data is opened with `keys` (`erased` when
/// none opens it); with `None` it reads `[sealed]`, which is what may leave Warden for a consumer
/// that cannot be asked to forget (a message broker).
pub fn envelope(event: &StoredEvent, keys: Option<&[&DataKey]>) -> CloudEvent {
    let body = event_body(&event.payload);
    let streamed = StreamedEvent {
        cursor: event.cursor,
        aggregate_type: event.aggregate_type.clone(),
        aggregate_id: event.aggregate_id.clone(),
        sequence: event.sequence,
        event_type: event.event_type.clone(),
        event_version: event.event_version.clone(),
        data: body.map_or_else(|| "{}".into(), Value::to_string),
        at: body
            .and_then(|b| b.get("at").or_else(|| b.get("started_at")))
            .and_then(Value::as_str)
            .map(str::to_owned),
        metadata: (*event.metadata).clone(),
    };
    streamed_envelope(streamed, keys)
}

/// Whether JSON text may hold a secret's stored form or sealed personal data: it names one of
/// those fields. PostgreSQL writes a key as its plain quoted name, and a quote inside a string
/// is escaped, so text that does not contain `"<name>"` has no such field; text that does is
/// opened and redacted the long way.
fn has_fields_to_open(json: &str) -> bool {
    SECRET_FIELDS
        .iter()
        .chain(SEALED_FIELDS.iter())
        .any(|name| {
            json.match_indices(name).any(|(at, _)| {
                json[..at].ends_with('"') && json[at + name.len()..].starts_with('"')
            })
        })
}

/// The envelope of an event whose body is JSON text: taken as it is when it has nothing to open
/// or redact (no decoding), else decoded, opened and redacted.
pub fn streamed_envelope(event: StreamedEvent, keys: Option<&[&DataKey]>) -> CloudEvent {
    let StreamedEvent {
        cursor,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        data,
        at,
        mut metadata,
    } = event;
    let data = if has_fields_to_open(&data) {
        let mut body: Value =
            serde_json::from_str(&data).unwrap_or_else(|_| Value::Object(Map::new()));
        redact(&mut body, keys);
        serde_json::value::to_raw_value(&body)
    } else {
        RawValue::from_string(data)
    }
    .unwrap_or_else(|_| empty_object());
    redact(&mut metadata, keys);
    let mut text = |key: &str| match metadata.get_mut(key) {
        Some(Value::String(value)) => Some(std::mem::take(value)),
        _ => None,
    };
    CloudEvent {
        specversion: "1.0",
        id: format!("{aggregate_type}:{aggregate_id}:{sequence}"),
        source: format!("{SOURCE}/{aggregate_type}s"),
        event_type,
        time: at.and_then(|at| at.parse().ok()),
        subject: aggregate_id,
        datacontenttype: "application/json",
        data,
        position: cursor.to_string(),
        dataversion: event_version,
        actor: text("actor"),
        requestid: text("request_id"),
        authmethod: text("auth_method"),
        ip: text("ip"),
        useragent: text("user_agent"),
    }
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".into()).unwrap_or_default()
}

#[derive(Clone)]
pub struct Stream {
    commands: Commands,
    directory: Directory,
    pool: PgPool,
}

impl Stream {
    pub fn new(commands: Commands, directory: Directory, pool: PgPool) -> Self {
        Self {
            commands,
            directory,
            pool,
        }
    }

    /// Platform admins and API tokens with `events:read`.
    pub async fn require_reader(&self, who: &Authenticated) -> Result<(), AppError> {
        match &who.credential {
            Credential::ApiToken { scopes, .. } if scopes.contains(&Scope::EventsRead) => Ok(()),
            _ => self.commands.require_admin(who).await,
        }
    }

    /// Up to `limit` events after `after` in commit order, from transactions that have all
    /// ended: a reader that continues from the last position it saw never misses an event that
    /// commits later with an older transaction.
    pub async fn page(&self, after: Cursor, limit: i64) -> Result<Vec<CloudEvent>, AppError> {
        let mut conn = self.pool.acquire().await?;
        let events = streamed_after(&mut conn, after, limit.clamp(1, PAGE_MAX)).await?;
        drop(conn);
        // Payloads are sealed under the account's key; request metadata under the actor's, or
        // the subject's when the actor was anonymous. One query fetches every key a page needs.
        let owners_of = |event: &StreamedEvent| -> Vec<Uuid> {
            let subject = (event.aggregate_type == "account")
                .then(|| Uuid::parse_str(&event.aggregate_id).ok())
                .flatten();
            let actor = event
                .metadata
                .get("actor")
                .and_then(Value::as_str)
                .and_then(|a| Uuid::parse_str(a).ok());
            subject.into_iter().chain(actor).collect()
        };
        let mut wanted: Vec<Uuid> = events.iter().flat_map(owners_of).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let keys = self.directory.keys().get_many(&wanted).await?;
        let page = events
            .into_iter()
            .map(|event| {
                let usable: Vec<&DataKey> = owners_of(&event)
                    .iter()
                    .filter_map(|o| keys.get(o).and_then(Option::as_ref))
                    .collect();
                streamed_envelope(event, Some(&usable))
            })
            .collect();
        Ok(page)
    }
}
