//! The password: checking it (every wrong one is recorded, and enough of them lock the account),
//! changing it, and resetting it through a mailed link.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::aggregate::Account;
use super::commands::{PasswordCommand, Reauthentication};
use super::errors::AccountError;
use super::events::{AccountEvent, PasswordChangeVia, PasswordCheckPurpose, SessionEndReason};
use super::services::AccountServices;
use super::sessions::SessionFilter;
use crate::shared::{PasswordHash, SessionId, TokenHash};

/// At most one reset mail this often, so nobody can flood a mailbox with them.
const RESET_MAIL_INTERVAL_MINUTES: i64 = 1;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct PasswordState {
    hash: Option<PasswordHash>,
    consecutive_failures: u32,
    locked_until: Option<DateTime<Utc>>,
    /// Locked until an administrator unlocks: too many wrong passwords or second factors.
    hard_locked: bool,
    pending_reset: Option<PendingReset>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingReset {
    token_hash: TokenHash,
    expires_at: DateTime<Utc>,
    requested_at: DateTime<Utc>,
}

impl PasswordState {
    pub(super) fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Registered { password_hash, .. } => {
                self.hash = Some(password_hash.clone())
            }
            AccountEvent::PasswordCheckFailed {
                consecutive_failures,
                ..
            } => self.consecutive_failures = *consecutive_failures,
            AccountEvent::LockedOut { until, .. } => match until {
                Some(until) => self.locked_until = Some(*until),
                None => self.hard_locked = true,
            },
            AccountEvent::MfaLockedOut { .. } => self.hard_locked = true,
            // A password that was right (a session, a challenge) or a token minted after it
            // starts the count again; a temporary lock lifts.
            AccountEvent::SessionStarted { .. } | AccountEvent::MfaChallengeIssued { .. } => {
                self.forgive()
            }
            AccountEvent::ApiTokenCreated { .. } => self.consecutive_failures = 0,
            AccountEvent::PasswordChanged {
                password_hash, via, ..
            } => {
                self.hash = Some(password_hash.clone());
                // The current password was presented or control of the mailbox was proven (a
                // hard lock stays until an administrator lifts it).
                self.forgive();
                if *via == PasswordChangeVia::Reset {
                    self.pending_reset = None;
                }
            }
            AccountEvent::PasswordResetRequested {
                token_hash,
                expires_at,
                at,
                ..
            } => {
                self.pending_reset = Some(PendingReset {
                    token_hash: token_hash.clone(),
                    expires_at: *expires_at,
                    requested_at: *at,
                })
            }
            AccountEvent::Unlocked { .. } => {
                self.hard_locked = false;
                self.forgive();
            }
            _ => {}
        }
    }

    fn forgive(&mut self) {
        self.consecutive_failures = 0;
        self.locked_until = None;
    }
}

impl Account {
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.ensure_unlocked(now).is_err()
    }

    /// Accounts created through an identity provider have none until a reset sets one.
    pub fn has_password(&self) -> bool {
        self.password.hash.is_some()
    }

    pub fn is_hard_locked(&self) -> bool {
        self.password.hard_locked
    }

    pub fn consecutive_password_failures(&self) -> u32 {
        self.password.consecutive_failures
    }

    pub fn locked_until(&self) -> Option<DateTime<Utc>> {
        self.password.locked_until
    }

    pub(super) fn ensure_unlocked(&self, now: DateTime<Utc>) -> Result<(), AccountError> {
        if self.password.hard_locked {
            return Err(AccountError::Locked { until: None });
        }
        match self.password.locked_until {
            Some(until) if until > now => Err(AccountError::Locked { until: Some(until) }),
            _ => Ok(()),
        }
    }

    pub(super) async fn handle_password(
        &mut self,
        command: PasswordCommand,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        match command {
            PasswordCommand::Change {
                current_password,
                new_password_hash,
                keep_session,
            } => {
                let proof = Reauthentication::Password(current_password);
                if self.reauthenticate(proof, now, svc, sink).await? {
                    self.change_password(new_password_hash, keep_session, now, sink)
                        .await;
                }
                Ok(())
            }
            PasswordCommand::RequestReset {
                token_hash,
                expires_at,
                mail_nonce,
            } => {
                let reset = PendingReset {
                    token_hash,
                    expires_at,
                    requested_at: now,
                };
                self.request_reset(reset, mail_nonce, sink).await;
                Ok(())
            }
            PasswordCommand::Reset {
                token_hash,
                new_password_hash,
            } => {
                self.reset_password(token_hash, new_password_hash, now, sink)
                    .await
            }
        }
    }

    /// Verifies `candidate`. A wrong password is written as a failure (and, past a threshold, a
    /// lock) and answered with `Ok(false)` so that the failure is kept.
    pub(super) async fn check_password(
        &mut self,
        candidate: &SecretString,
        purpose: PasswordCheckPurpose,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<bool, AccountError> {
        let Some(hash) = self.password.hash.as_ref() else {
            return Err(AccountError::NoPassword);
        };
        if let Err(locked) = self.ensure_unlocked(now) {
            // At login only the right password learns of the lock: a wrong one is answered as
            // for an address nobody has, so the lock tells nobody that the account exists.
            if purpose == PasswordCheckPurpose::Login
                && !svc.passwords.verify(hash, candidate).await
            {
                return Err(AccountError::WrongPasswordWhileLocked);
            }
            return Err(locked);
        }
        if svc.passwords.verify(hash, candidate).await {
            return Ok(true);
        }
        let failures = self.password.consecutive_failures.saturating_add(1);
        let failed = AccountEvent::PasswordCheckFailed {
            purpose,
            consecutive_failures: failures,
            at: now,
        };
        let until = if failures >= svc.policy.hard_lock_threshold {
            Some(None)
        } else {
            svc.policy
                .lockout_window(failures)
                .map(|window| Some(now + window))
        };
        let lock = until.map(|until| AccountEvent::LockedOut {
            until,
            consecutive_failures: failures,
            at: now,
        });
        self.record_refusal(failed, lock, sink).await;
        Ok(false)
    }

    async fn change_password(
        &mut self,
        password_hash: PasswordHash,
        keep_session: Option<SessionId>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) {
        let changed = AccountEvent::PasswordChanged {
            password_hash,
            via: PasswordChangeVia::Change,
            at: now,
        };
        sink.write(changed, self).await;
        let others = match keep_session {
            Some(kept) => SessionFilter::AllBut(kept),
            None => SessionFilter::All,
        };
        self.end_sessions(others, SessionEndReason::PasswordChanged, now, sink)
            .await;
    }

    async fn request_reset(
        &mut self,
        reset: PendingReset,
        mail_nonce: String,
        sink: &EventSink<Self>,
    ) {
        let now = reset.requested_at;
        let recent =
            self.password.pending_reset.as_ref().is_some_and(|p| {
                now - p.requested_at < Duration::minutes(RESET_MAIL_INTERVAL_MINUTES)
            });
        if !recent {
            let event = AccountEvent::PasswordResetRequested {
                token_hash: reset.token_hash,
                expires_at: reset.expires_at,
                at: now,
                mail_nonce: Some(mail_nonce),
            };
            sink.write(event, self).await;
        }
    }

    async fn reset_password(
        &mut self,
        token_hash: TokenHash,
        password_hash: PasswordHash,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        let valid = self
            .password
            .pending_reset
            .as_ref()
            .is_some_and(|p| p.token_hash == token_hash && p.expires_at > now);
        if !valid {
            return Err(AccountError::ResetTokenInvalid);
        }
        let changed = AccountEvent::PasswordChanged {
            password_hash,
            via: PasswordChangeVia::Reset,
            at: now,
        };
        sink.write(changed, self).await;
        self.end_sessions(
            SessionFilter::All,
            SessionEndReason::PasswordReset,
            now,
            sink,
        )
        .await;
        Ok(())
    }
}
