//! API access tokens: minted after the password, used, expired, rate limited, revoked.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::aggregate::Account;
use super::commands::{ApiTokenCommand, NewApiToken, Reauthentication};
use super::errors::AccountError;
use super::events::AccountEvent;
use super::services::AccountServices;
use crate::shared::{Scope, TokenId};

/// A refused token records at most one rate-limit event this often.
const RATE_LIMIT_EVENT_INTERVAL_MINUTES: i64 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiTokenState {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub first_used: bool,
    pub expiry_recorded: bool,
    pub last_rate_limited_at: Option<DateTime<Utc>>,
}

/// Live (unrevoked) API tokens.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct ApiTokens(BTreeMap<TokenId, ApiTokenState>);

impl ApiTokens {
    pub(super) fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::ApiTokenCreated {
                token_id,
                name,
                scopes,
                expires_at,
                ..
            } => {
                let token = ApiTokenState {
                    name: name.clone(),
                    scopes: scopes.clone(),
                    expires_at: *expires_at,
                    first_used: false,
                    expiry_recorded: false,
                    last_rate_limited_at: None,
                };
                self.0.insert(*token_id, token);
            }
            AccountEvent::ApiTokenFirstUsed { token_id, .. } => {
                self.update(token_id, |t| t.first_used = true)
            }
            AccountEvent::ApiTokenExpired { token_id, .. } => {
                self.update(token_id, |t| t.expiry_recorded = true)
            }
            AccountEvent::ApiTokenRateLimited { token_id, at } => {
                self.update(token_id, |t| t.last_rate_limited_at = Some(*at))
            }
            AccountEvent::ApiTokenRevoked { token_id, .. } => {
                self.0.remove(token_id);
            }
            _ => {}
        }
    }

    fn update(&mut self, token_id: &TokenId, change: impl FnOnce(&mut ApiTokenState)) {
        if let Some(token) = self.0.get_mut(token_id) {
            change(token);
        }
    }
}

impl Account {
    /// Live API tokens.
    pub fn api_tokens(&self) -> impl Iterator<Item = (&TokenId, &ApiTokenState)> {
        self.api_tokens.0.iter()
    }

    fn token(&self, token_id: TokenId) -> Result<&ApiTokenState, AccountError> {
        self.api_tokens
            .0
            .get(&token_id)
            .ok_or(AccountError::TokenNotFound)
    }

    pub(super) async fn handle_api_token(
        &mut self,
        command: ApiTokenCommand,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        let event = match command {
            ApiTokenCommand::Create { password, token } => {
                return self.create_api_token(password, token, now, svc, sink).await
            }
            ApiTokenCommand::Revoke { token_id } => {
                self.token(token_id)?;
                AccountEvent::ApiTokenRevoked { token_id, at: now }
            }
            ApiTokenCommand::RecordUse { token_id } => {
                if self.token(token_id)?.first_used {
                    return Ok(());
                }
                AccountEvent::ApiTokenFirstUsed { token_id, at: now }
            }
            ApiTokenCommand::RecordExpired { token_id } => {
                let token = self.token(token_id)?;
                let expired = token.expires_at.is_some_and(|e| e <= now);
                if !expired || token.expiry_recorded {
                    return Ok(());
                }
                AccountEvent::ApiTokenExpired { token_id, at: now }
            }
            ApiTokenCommand::RecordRateLimited { token_id } => {
                let interval = Duration::minutes(RATE_LIMIT_EVENT_INTERVAL_MINUTES);
                let quiet = self
                    .token(token_id)?
                    .last_rate_limited_at
                    .is_none_or(|last| now - last >= interval);
                if !quiet {
                    return Ok(());
                }
                AccountEvent::ApiTokenRateLimited { token_id, at: now }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    async fn create_api_token(
        &mut self,
        password: SecretString,
        token: NewApiToken,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if token.expires_at.is_some_and(|e| e <= now) {
            return Err(AccountError::ExpiryInPast);
        }
        if self.api_tokens.0.values().any(|t| t.name == token.name) {
            return Err(AccountError::TokenNameTaken);
        }
        let proof = Reauthentication::Password(password);
        if !self.reauthenticate(proof, now, svc, sink).await? {
            return Ok(());
        }
        let created = AccountEvent::ApiTokenCreated {
            token_id: token.token_id,
            name: token.name,
            token_hash: token.token_hash,
            scopes: token.scopes,
            expires_at: token.expires_at,
            at: now,
        };
        sink.write(created, self).await;
        Ok(())
    }
}
