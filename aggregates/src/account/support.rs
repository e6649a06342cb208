//! What support and platform administrators do: access requests from locked-out users, unlocks,
//! second-factor resets, the admin grant, erasure.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::aggregate::Account;
use super::commands::SupportCommand;
use super::errors::AccountError;
use super::events::{AccountEvent, SessionEndReason};
use super::sessions::SessionFilter;
use crate::shared::TokenId;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Support {
    open_access_request: Option<Uuid>,
}

impl Support {
    pub(super) fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::AccessRequested { request_id, .. } => {
                self.open_access_request = Some(*request_id)
            }
            AccountEvent::AccessRequestDecided { .. } => self.open_access_request = None,
            _ => {}
        }
    }
}

impl Account {
    pub fn open_access_request(&self) -> Option<Uuid> {
        self.support.open_access_request
    }

    pub(super) async fn handle_support(
        &mut self,
        command: SupportCommand,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        match command {
            SupportCommand::RequestAccess { request_id, reason } => {
                if self.support.open_access_request.is_none() {
                    let requested = AccountEvent::AccessRequested {
                        request_id,
                        reason,
                        at: now,
                    };
                    sink.write(requested, self).await;
                }
            }
            SupportCommand::DecideAccessRequest {
                request_id,
                approve,
                by,
            } => {
                if self.support.open_access_request != Some(request_id) {
                    return Err(AccountError::AccessRequestNotFound);
                }
                let decided = AccountEvent::AccessRequestDecided {
                    request_id,
                    approved: approve,
                    by,
                    at: now,
                };
                sink.write(decided, self).await;
                if approve {
                    sink.write(AccountEvent::Unlocked { by, at: now }, self)
                        .await;
                }
            }
            SupportCommand::Unlock { by } => {
                sink.write(AccountEvent::Unlocked { by, at: now }, self)
                    .await
            }
            SupportCommand::ResetMfa { by } => {
                sink.write(AccountEvent::MfaReset { by, at: now }, self)
                    .await;
                self.end_sessions(SessionFilter::All, SessionEndReason::Revoked, now, sink)
                    .await;
            }
            SupportCommand::GrantAdmin => {
                if !self.is_admin() {
                    sink.write(AccountEvent::AdminGranted { at: now }, self)
                        .await;
                }
            }
            SupportCommand::SetAuditor { auditor, by } => {
                let event = match (auditor, self.is_auditor()) {
                    (true, false) => AccountEvent::AuditorGranted { by, at: now },
                    (false, true) => AccountEvent::AuditorRevoked { by, at: now },
                    _ => return Ok(()),
                };
                sink.write(event, self).await;
            }
            SupportCommand::Erase { by } => self.erase(by, now, sink).await,
        }
        Ok(())
    }

    /// Every credential ends first, so nothing of the account stays usable.
    async fn erase(
        &mut self,
        by: crate::shared::AccountId,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) {
        self.end_sessions(SessionFilter::All, SessionEndReason::Revoked, now, sink)
            .await;
        let tokens: Vec<TokenId> = self.api_tokens().map(|(id, _)| *id).collect();
        for token_id in tokens {
            let revoked = AccountEvent::ApiTokenRevoked { token_id, at: now };
            sink.write(revoked, self).await;
        }
        sink.write(AccountEvent::Erased { by, at: now }, self).await;
    }
}
