//! Token introspection for the services that hold conversations and reports: is this credential
//! live, whose is it, what may it do. The same credentials, and the same cache, as
//! authentication.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;
use warden_aggregates::shared::{Clock, Scope};

use super::context::{Authenticated, Credential};
use super::credentials::cache::{CachedCredential, Facts};
use super::credentials::Credentials;
use super::error::AppError;
use super::problem::ProblemCode;
use crate::adapters::tokens::{self, API_PREFIX, SESSION_PREFIX};

pub enum TokenKind {
    Session,
    ApiToken,
}

pub struct Introspected {
    pub account_id: Uuid,
    pub kind: TokenKind,
    pub scopes: Vec<Scope>,
    pub workspaces: Vec<(Uuid, String)>,
    pub mfa_passed: bool,
    pub enrollment_only: bool,
    pub pin_unlocked_until: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Introspection {
    credentials: Credentials,
    clock: Arc<dyn Clock>,
}

impl Introspection {
    pub fn new(credentials: Credentials, clock: Arc<dyn Clock>) -> Self {
        Self { credentials, clock }
    }

    /// `None` when the token is not live (unknown, ended, revoked, expired).
    pub async fn introspect(
        &self,
        who: &Authenticated,
        token: &SecretString,
    ) -> Result<Option<Introspected>, AppError> {
        match who.credential {
            Credential::ApiToken { .. } => who.require(Scope::Introspect)?,
            Credential::Session(_) => {
                return Err(AppError::with(
                    ProblemCode::InsufficientScope,
                    "introspection needs an API token with the `introspect` scope",
                ))
            }
        }
        let now = self.clock.now();
        let found = if let Some(hash) = tokens::hash_presented(token, SESSION_PREFIX) {
            self.credentials.session(&hash.0, now).await?
        } else if let Some(hash) = tokens::hash_presented(token, API_PREFIX) {
            self.credentials.api_token(&hash.0).await?
        } else {
            None
        };
        Ok(found.and_then(|entry| introspected(&entry, now)))
    }
}

fn introspected(entry: &CachedCredential, now: DateTime<Utc>) -> Option<Introspected> {
    let workspaces = entry
        .memberships
        .iter()
        .map(|m| (m.workspace_id().0, m.role().as_str().to_owned()))
        .collect();
    Some(match &entry.facts {
        Facts::Session(s) => Introspected {
            account_id: entry.account_id,
            kind: TokenKind::Session,
            scopes: if entry.enrollment_only {
                vec![]
            } else {
                vec![Scope::Read, Scope::Write]
            },
            workspaces,
            mfa_passed: s.mfa_passed,
            enrollment_only: entry.enrollment_only,
            pin_unlocked_until: s.pin_unlocked_until.filter(|u| *u > now),
            expires_at: Some(s.expires_at),
        },
        Facts::ApiToken(t) => {
            if t.expires_at.is_some_and(|e| e <= now) {
                return None;
            }
            Introspected {
                account_id: entry.account_id,
                kind: TokenKind::ApiToken,
                scopes: t.scopes.clone(),
                workspaces,
                mfa_passed: false,
                enrollment_only: false,
                pin_unlocked_until: None,
                expires_at: t.expires_at,
            }
        }
    })
}
