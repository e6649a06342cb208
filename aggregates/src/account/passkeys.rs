//! Passkeys: the account's WebAuthn credentials, the registration ceremony waiting for its
//! answer, and the rules the account decides from its own state — a ceremony is answered once,
//! a credential is the account's own, and a signature counter never goes backwards (a cloned
//! authenticator). The WebAuthn checks themselves (signature, challenge, origin, user
//! verification) run at the edge, which reports what it found.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::aggregate::Account;
use super::commands::{NewPasskey, NewSession, PasskeyAssertion, PasskeyCheck, PasskeyCommand};
use super::errors::AccountError;
use super::events::{AccountEvent, AuthMethod, PasskeyRefusal};
use super::login_decision::{decide, FirstFactor, LoginDecision};
use super::services::AccountServices;
use crate::shared::SealedText;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Passkeys {
    registered: BTreeMap<String, StoredPasskey>,
    pending: Option<PendingCeremony>,
    /// A re-authentication ceremony waiting for its answer.
    #[serde(default)]
    reauthentication: Option<PendingCeremony>,
}

/// A registered passkey as the account keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPasskey {
    /// Sealed under the account's data key.
    pub name: SealedText,
    /// The public-key credential (JSON) the WebAuthn library verifies assertions with.
    pub credential: String,
    pub counter: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub transports: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingCeremony {
    state: SealedText,
    expires_at: DateTime<Utc>,
}

impl Passkeys {
    pub(super) fn apply(&mut self, event: &AccountEvent) {
        self.apply_ceremonies(event);
        self.apply_credentials(event);
    }

    /// The ceremonies waiting for an answer: a registration, a re-authentication.
    fn apply_ceremonies(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::PasskeyRegistrationStarted {
                ceremony,
                expires_at,
                ..
            } => {
                self.pending = Some(PendingCeremony {
                    state: ceremony.clone(),
                    expires_at: *expires_at,
                });
            }
            AccountEvent::PasskeyRegistered { .. } => self.pending = None,
            AccountEvent::PasskeyReauthenticationRequested {
                ceremony,
                expires_at,
                ..
            } => {
                self.reauthentication = Some(PendingCeremony {
                    state: ceremony.clone(),
                    expires_at: *expires_at,
                });
            }
            // Any answer ends a waiting re-authentication: it is answered once.
            AccountEvent::PasskeyRefused { .. } | AccountEvent::PasskeyUsed { .. } => {
                self.reauthentication = None
            }
            _ => {}
        }
    }

    fn apply_credentials(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::PasskeyRegistered {
                credential_id,
                passkey_name,
                credential,
                counter,
                backup_eligible,
                backup_state,
                transports,
                at,
            } => {
                let stored = StoredPasskey {
                    name: passkey_name.clone(),
                    credential: credential.clone(),
                    counter: *counter,
                    backup_eligible: *backup_eligible,
                    backup_state: *backup_state,
                    transports: transports.clone(),
                    created_at: *at,
                    last_used_at: None,
                };
                self.registered.insert(credential_id.clone(), stored);
            }
            AccountEvent::PasskeyUsed {
                credential_id,
                counter,
                backup_state,
                credential,
                at,
                ..
            } => {
                if let Some(stored) = self.registered.get_mut(credential_id) {
                    stored.counter = *counter;
                    stored.backup_state = *backup_state;
                    stored.credential = credential.clone();
                    stored.last_used_at = Some(*at);
                }
            }
            AccountEvent::PasskeyRenamed {
                credential_id,
                passkey_name,
                ..
            } => {
                if let Some(stored) = self.registered.get_mut(credential_id) {
                    stored.name = passkey_name.clone();
                }
            }
            AccountEvent::PasskeyRemoved { credential_id, .. } => {
                self.registered.remove(credential_id);
            }
            // Support's MFA reset removes every second factor, passkeys included.
            AccountEvent::MfaReset { .. } => *self = Self::default(),
            _ => {}
        }
    }
}

impl Account {
    pub fn passkeys(&self) -> &BTreeMap<String, StoredPasskey> {
        &self.passkeys.registered
    }

    /// The registration ceremony's sealed state, while it is open.
    pub fn passkey_registration(&self, now: DateTime<Utc>) -> Option<&SealedText> {
        self.passkeys
            .pending
            .as_ref()
            .filter(|p| p.expires_at > now)
            .map(|p| &p.state)
    }

    /// The re-authentication ceremony's sealed state, while it is open.
    pub fn passkey_reauthentication(&self, now: DateTime<Utc>) -> Option<&SealedText> {
        self.passkeys
            .reauthentication
            .as_ref()
            .filter(|p| p.expires_at > now)
            .map(|p| &p.state)
    }

    pub(super) async fn handle_passkey(
        &mut self,
        command: PasskeyCommand,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        match command {
            PasskeyCommand::StartRegistration {
                proof,
                state,
                expires_at,
            } => {
                if self.reauthenticate(proof, now, svc, sink).await? {
                    let started = AccountEvent::PasskeyRegistrationStarted {
                        ceremony: state,
                        expires_at,
                        at: now,
                    };
                    sink.write(started, self).await;
                }
                Ok(())
            }
            PasskeyCommand::RequestReauthentication { state, expires_at } => {
                if self.passkeys.registered.is_empty() {
                    return Err(AccountError::PasskeyNotFound);
                }
                let requested = AccountEvent::PasskeyReauthenticationRequested {
                    ceremony: state,
                    expires_at,
                    at: now,
                };
                sink.write(requested, self).await;
                Ok(())
            }
            PasskeyCommand::Register { state, passkey } => {
                self.register_passkey(state, passkey, now, sink).await
            }
            PasskeyCommand::Rename {
                credential_id,
                name,
            } => {
                self.known_passkey(&credential_id)?;
                let renamed = AccountEvent::PasskeyRenamed {
                    credential_id,
                    passkey_name: name,
                    at: now,
                };
                sink.write(renamed, self).await;
                Ok(())
            }
            PasskeyCommand::Remove {
                credential_id,
                proof,
            } => {
                self.known_passkey(&credential_id)?;
                if self.reauthenticate(proof, now, svc, sink).await? {
                    let removed = AccountEvent::PasskeyRemoved {
                        credential_id,
                        at: now,
                    };
                    sink.write(removed, self).await;
                }
                Ok(())
            }
            PasskeyCommand::SignIn { assertion, session } => {
                self.sign_in_with_passkey(assertion, session, now, svc, sink)
                    .await
            }
        }
    }

    fn known_passkey(&self, credential_id: &str) -> Result<&StoredPasskey, AccountError> {
        self.passkeys
            .registered
            .get(credential_id)
            .ok_or(AccountError::PasskeyNotFound)
    }

    async fn register_passkey(
        &mut self,
        state: SealedText,
        passkey: NewPasskey,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        // Only the open ceremony, once: a second answer finds it closed.
        if self.passkey_registration(now) != Some(&state) {
            return Err(AccountError::PasskeyRegistrationInvalid);
        }
        if self
            .passkeys
            .registered
            .contains_key(&passkey.credential_id)
        {
            return Err(AccountError::PasskeyAlreadyRegistered);
        }
        let registered = AccountEvent::PasskeyRegistered {
            credential_id: passkey.credential_id,
            passkey_name: passkey.name,
            credential: passkey.credential,
            counter: passkey.counter,
            backup_eligible: passkey.backup_eligible,
            backup_state: passkey.backup_state,
            transports: passkey.transports,
            at: now,
        };
        sink.write(registered, self).await;
        Ok(())
    }

    /// Decides an assertion the edge checked: records its use, or its refusal. `Ok(true)` when
    /// it was accepted.
    pub(super) async fn use_passkey(
        &mut self,
        check: PasskeyCheck,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> bool {
        let outcome = match (self.known_passkey(&check.credential_id), check.outcome) {
            (Err(_), _) => Err(PasskeyRefusal::UnknownCredential),
            (Ok(_), Err(reason)) => Err(reason),
            (Ok(stored), Ok(assertion)) => accept(stored, assertion),
        };
        match outcome {
            Ok((assertion, backup_state_changed)) => {
                let used = AccountEvent::PasskeyUsed {
                    credential_id: check.credential_id,
                    counter: assertion.counter,
                    backup_state: assertion.backup_state,
                    backup_state_changed,
                    credential: assertion.credential,
                    at: now,
                };
                sink.write(used, self).await;
                true
            }
            Err(reason) => {
                let refused = AccountEvent::PasskeyRefused {
                    credential_id: check.credential_id,
                    reason,
                    at: now,
                };
                sink.write(refused, self).await;
                false
            }
        }
    }

    async fn sign_in_with_passkey(
        &mut self,
        check: PasskeyCheck,
        session: NewSession,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        self.ensure_unlocked(now)?;
        if !self.use_passkey(check, now, sink).await {
            return Ok(());
        }
        match decide(FirstFactor::Passkey, self.mfa_methods(), &[]) {
            LoginDecision::Session => {
                let session = NewSession {
                    method: AuthMethod::Passkey,
                    ..session
                };
                self.start_session(session, false, Vec::new(), now, svc, sink)
                    .await;
                Ok(())
            }
            // User-verified: no other decision is reachable for a passkey sign-in.
            LoginDecision::Challenge(_) | LoginDecision::EnrollmentOnly => {
                Err(AccountError::PasskeyNotFound)
            }
        }
    }
}

/// The counter rule of WebAuthn §7.2 step 22 against the newest state: where either counter is
/// kept, the new one must be greater.
fn accept(
    stored: &StoredPasskey,
    assertion: PasskeyAssertion,
) -> Result<(PasskeyAssertion, bool), PasskeyRefusal> {
    let counted = assertion.counter > 0 || stored.counter > 0;
    if counted && assertion.counter <= stored.counter {
        return Err(PasskeyRefusal::CounterWentBackwards);
    }
    let changed = assertion.backup_state != stored.backup_state;
    Ok((assertion, changed))
}
