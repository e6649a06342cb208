//! The reporting PIN: set and removed after the password; a right PIN unlocks reporting history
//! for one session for a while, and wrong ones lock verification for a while.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::aggregate::Account;
use super::commands::{PinCommand, Reauthentication};
use super::errors::AccountError;
use super::events::AccountEvent;
use super::services::AccountServices;
use crate::shared::{PasswordHash, SessionId};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct PinState(Option<Pin>);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pin {
    hash: PasswordHash,
    consecutive_failures: u32,
    locked_until: Option<DateTime<Utc>>,
}

impl PinState {
    pub(super) fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::PinSet { pin_hash, .. } => {
                self.0 = Some(Pin {
                    hash: pin_hash.clone(),
                    consecutive_failures: 0,
                    locked_until: None,
                })
            }
            AccountEvent::PinRemoved { .. } => self.0 = None,
            AccountEvent::PinVerified { .. } => self.update(|pin| {
                pin.consecutive_failures = 0;
                pin.locked_until = None;
            }),
            AccountEvent::PinCheckFailed {
                consecutive_failures,
                ..
            } => self.update(|pin| pin.consecutive_failures = *consecutive_failures),
            AccountEvent::PinLocked { until, .. } => self.update(|pin| {
                pin.locked_until = Some(*until);
                pin.consecutive_failures = 0;
            }),
            _ => {}
        }
    }

    fn update(&mut self, change: impl FnOnce(&mut Pin)) {
        if let Some(pin) = self.0.as_mut() {
            change(pin);
        }
    }
}

impl Account {
    pub fn pin_set(&self) -> bool {
        self.pin.0.is_some()
    }

    pub(super) async fn handle_pin(
        &mut self,
        command: PinCommand,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        match command {
            PinCommand::Set { password, pin_hash } => {
                let proof = Reauthentication::Password(password);
                if self.reauthenticate(proof, now, svc, sink).await? {
                    sink.write(AccountEvent::PinSet { pin_hash, at: now }, self)
                        .await;
                }
                Ok(())
            }
            PinCommand::Remove { password } => {
                if !self.pin_set() {
                    return Err(AccountError::PinNotSet);
                }
                let proof = Reauthentication::Password(password);
                if self.reauthenticate(proof, now, svc, sink).await? {
                    sink.write(AccountEvent::PinRemoved { at: now }, self).await;
                }
                Ok(())
            }
            PinCommand::Verify { pin, session_id } => {
                self.verify_pin(&pin, session_id, now, svc, sink).await
            }
        }
    }

    async fn verify_pin(
        &mut self,
        candidate: &SecretString,
        session_id: SessionId,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.has_session(session_id) {
            return Err(AccountError::SessionNotFound);
        }
        let pin = self.pin.0.clone().ok_or(AccountError::PinNotSet)?;
        if let Some(until) = pin.locked_until.filter(|u| *u > now) {
            return Err(AccountError::PinLocked { until });
        }
        if svc.passwords.verify(&pin.hash, candidate).await {
            let verified = AccountEvent::PinVerified {
                session_id,
                unlocked_until: now + svc.policy.pin_unlock,
                at: now,
            };
            sink.write(verified, self).await;
            return Ok(());
        }
        let failures = pin.consecutive_failures + 1;
        let failed = AccountEvent::PinCheckFailed {
            session_id,
            consecutive_failures: failures,
            at: now,
        };
        let lock = (failures >= svc.policy.pin_attempts).then(|| AccountEvent::PinLocked {
            until: now + svc.policy.pin_lockout,
            at: now,
        });
        self.record_refusal(failed, lock, sink).await;
        Ok(())
    }
}
