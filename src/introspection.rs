//! Token introspection for the services that hold conversations and reports: is this credential
//! live, whose is it, what may it do.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;
use warden_aggregates::shared::{ErrorKind, Scope};

use crate::accounts::{AccountsService, Authenticated, Credential};
use crate::adapters::tokens::{self, API_PREFIX, SESSION_PREFIX};
use crate::error::AppError;

pub enum TokenKind {
    Session,
    ApiToken,
}

pub struct Introspection {
    pub account_id: Uuid,
    pub kind: TokenKind,
    pub scopes: Vec<Scope>,
    pub workspaces: Vec<(Uuid, String)>,
    pub mfa_passed: bool,
    pub enrolment_only: bool,
    pub pin_unlocked_until: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct SessionFacts {
    account_id: Uuid,
    expires_at: DateTime<Utc>,
    idle_timeout_secs: i64,
    ended_at: Option<DateTime<Utc>>,
    enrolment_only: bool,
    pin_unlocked_until: Option<DateTime<Utc>>,
    last_seen_at: DateTime<Utc>,
    method: Option<String>,
}

#[derive(sqlx::FromRow)]
struct TokenFacts {
    account_id: Uuid,
    scopes: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl AccountsService {
    /// `None` when the token is not live (unknown, ended, revoked, expired).
    pub async fn introspect(
        &self,
        who: &Authenticated,
        token: &SecretString,
    ) -> Result<Option<Introspection>, AppError> {
        match who.credential {
            Credential::ApiToken { .. } => who.require(Scope::Introspect)?,
            Credential::Session(_) => {
                return Err(AppError::rejected(
                    ErrorKind::Forbidden,
                    "insufficient_scope",
                    "introspection needs an API token with the `introspect` scope",
                ))
            }
        }
        let now = self.clock.now();
        let found = if let Some(hash) = tokens::hash_presented(token, SESSION_PREFIX) {
            let facts: Option<SessionFacts> = sqlx::query_as(
                "SELECT c.account_id, c.expires_at, c.idle_timeout_secs, c.ended_at,
                        c.enrolment_only, c.pin_unlocked_until,
                        COALESCE(a.last_seen_at, c.started_at) AS last_seen_at, h.method
                 FROM session_credentials_v1 c
                 LEFT JOIN session_activity a ON a.session_id = c.session_id
                 LEFT JOIN session_history_v1 h ON h.session_id = c.session_id
                 WHERE c.token_hash = $1",
            )
            .bind(&hash.0)
            .fetch_optional(&self.pool)
            .await?;
            facts
                .filter(|f| {
                    f.ended_at.is_none()
                        && now < f.expires_at
                        && now < f.last_seen_at + chrono::Duration::seconds(f.idle_timeout_secs)
                })
                .map(|f| Introspection {
                    account_id: f.account_id,
                    kind: TokenKind::Session,
                    scopes: if f.enrolment_only {
                        vec![]
                    } else {
                        vec![Scope::Read, Scope::Write]
                    },
                    workspaces: vec![],
                    mfa_passed: f.method.is_some_and(|m| m != "password"),
                    enrolment_only: f.enrolment_only,
                    pin_unlocked_until: f.pin_unlocked_until.filter(|u| *u > now),
                    expires_at: Some(f.expires_at),
                })
        } else if let Some(hash) = tokens::hash_presented(token, API_PREFIX) {
            let facts: Option<TokenFacts> = sqlx::query_as(
                "SELECT account_id, scopes, expires_at, revoked_at FROM api_tokens_v1
                 WHERE token_hash = $1",
            )
            .bind(&hash.0)
            .fetch_optional(&self.pool)
            .await?;
            facts
                .filter(|f| f.revoked_at.is_none() && f.expires_at.is_none_or(|e| e > now))
                .map(|f| Introspection {
                    account_id: f.account_id,
                    kind: TokenKind::ApiToken,
                    scopes: f.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                    workspaces: vec![],
                    mfa_passed: false,
                    enrolment_only: false,
                    pin_unlocked_until: None,
                    expires_at: f.expires_at,
                })
        } else {
            None
        };
        let Some(mut found) = found else {
            return Ok(None);
        };
        found.workspaces = sqlx::query_as(
            "SELECT workspace_id, role FROM workspace_members_v1 WHERE account_id = $1
             ORDER BY workspace_id",
        )
        .bind(found.account_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(found))
    }
}
