//! The login challenge: issued after a right password when a second factor is due, passed by one
//! right code, ended by too many wrong ones; and the second-factor lock-out.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::email_code::EmailCode;
use super::state::MfaState;
use crate::account::aggregate::Account;
use crate::account::commands::{MfaProof, NewSession};
use crate::account::errors::AccountError;
use crate::account::events::{AccountEvent, AuthMethod, MfaFailure, MfaMethod};
use crate::account::services::AccountServices;
use crate::shared::{SealedText, TokenHash, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(in crate::account) struct Challenge {
    device: Option<SealedText>,
    expires_at: DateTime<Utc>,
    failures: u32,
    pub(super) email_code: Option<EmailCode>,
    /// The passkey ceremony's sealed state, once request options were given.
    #[serde(default)]
    passkey_state: Option<SealedText>,
}

/// A challenge the password step asks for.
pub(in crate::account) struct NewChallenge {
    pub(in crate::account) challenge_hash: TokenHash,
    pub(in crate::account) device: Option<SealedText>,
    pub(in crate::account) methods: Vec<MfaMethod>,
    pub(in crate::account) required_by: Vec<WorkspaceId>,
}

impl MfaState {
    pub(super) fn apply_challenges(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::MfaChallengeIssued {
                challenge_hash,
                device,
                expires_at,
                at,
                ..
            } => {
                // Challenges past their time are dropped here so the open set stays small.
                self.challenges.retain(|_, c| c.expires_at > *at);
                let challenge = Challenge {
                    device: device.clone(),
                    expires_at: *expires_at,
                    failures: 0,
                    email_code: None,
                    passkey_state: None,
                };
                self.challenges.insert(challenge_hash.0.clone(), challenge);
            }
            AccountEvent::MfaCheckFailed {
                challenge_hash,
                consecutive_failures,
                ..
            } => {
                self.consecutive_failures = *consecutive_failures;
                let challenge = challenge_hash
                    .as_ref()
                    .and_then(|h| self.challenges.get_mut(&h.0));
                if let Some(challenge) = challenge {
                    challenge.failures += 1;
                }
            }
            AccountEvent::MfaPasskeyRequested {
                challenge_hash,
                ceremony,
                ..
            } => {
                if let Some(challenge) = self.challenges.get_mut(&challenge_hash.0) {
                    challenge.passkey_state = Some(ceremony.clone());
                }
            }
            AccountEvent::MfaPassed { challenge_hash, .. } => {
                self.challenges.remove(&challenge_hash.0);
                self.consecutive_failures = 0;
            }
            _ => {}
        }
    }
}

impl Account {
    pub(in crate::account) async fn issue_challenge(
        &mut self,
        challenge: NewChallenge,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) {
        let issued = AccountEvent::MfaChallengeIssued {
            challenge_hash: challenge.challenge_hash,
            device: challenge.device,
            methods: challenge.methods,
            expires_at: now + svc.policy.mfa_challenge_ttl,
            at: now,
            required_by: challenge.required_by,
        };
        sink.write(issued, self).await;
    }

    /// The challenge, while it is open: not expired and not spent on wrong codes.
    pub(super) fn open_challenge(
        &self,
        challenge_hash: &TokenHash,
        now: DateTime<Utc>,
        svc: &AccountServices,
    ) -> Result<&Challenge, AccountError> {
        self.mfa
            .challenges
            .get(&challenge_hash.0)
            .filter(|c| c.expires_at > now && c.failures < svc.policy.mfa_challenge_attempts)
            .ok_or(AccountError::ChallengeInvalid)
    }

    /// Records a failed second-factor check and, at the threshold, the lock.
    pub(in crate::account) async fn record_mfa_failure(
        &mut self,
        challenge_hash: Option<TokenHash>,
        method: MfaMethod,
        reason: MfaFailure,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) {
        let failures = self.mfa.consecutive_failures.saturating_add(1);
        let failed = AccountEvent::MfaCheckFailed {
            challenge_hash,
            method,
            reason,
            consecutive_failures: failures,
            at: now,
        };
        let crossed = failures >= svc.policy.mfa_lock_threshold && !self.is_hard_locked();
        let lock = crossed.then_some(AccountEvent::MfaLockedOut {
            consecutive_failures: failures,
            at: now,
        });
        self.record_refusal(failed, lock, sink).await;
    }

    /// Checks `proof` against the open challenge: the method it is for, and the TOTP step it
    /// uses (if any).
    fn check_proof(
        &self,
        challenge: &Challenge,
        proof: &MfaProof,
        now: DateTime<Utc>,
        svc: &AccountServices,
    ) -> (MfaMethod, Result<Option<u64>, MfaFailure>) {
        match proof {
            MfaProof::Totp(code) => (MfaMethod::Totp, self.check_totp(code, now, svc).map(Some)),
            MfaProof::Email(hash) => {
                let valid = challenge
                    .email_code
                    .as_ref()
                    .is_some_and(|c| c.accepts(hash, now));
                let outcome = valid.then_some(None).ok_or(MfaFailure::WrongCode);
                (MfaMethod::Email, outcome)
            }
            MfaProof::RecoveryCode(hash) => {
                let known = self.mfa.knows_recovery_code(hash);
                let outcome = known.then_some(None).ok_or(MfaFailure::WrongCode);
                (MfaMethod::RecoveryCode, outcome)
            }
            // Decided by `use_passkey` once the ceremony is known to be this challenge's.
            MfaProof::Passkey { state, .. } => {
                let ours = challenge.passkey_state.as_ref() == Some(state);
                let outcome = ours.then_some(None).ok_or(MfaFailure::WrongCode);
                (MfaMethod::Passkey, outcome)
            }
        }
    }

    /// The challenge's passkey ceremony state, once options were given: `None` when the
    /// challenge was passed or dropped, `Some(None)` before options. Whether it is still open is
    /// decided by the second step.
    pub fn challenge_passkey_state(
        &self,
        challenge_hash: &TokenHash,
    ) -> Option<Option<&SealedText>> {
        self.mfa
            .challenges
            .get(&challenge_hash.0)
            .map(|c| c.passkey_state.as_ref())
    }

    pub(super) async fn complete_mfa(
        &mut self,
        challenge_hash: TokenHash,
        proof: MfaProof,
        session: NewSession,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if self.is_hard_locked() {
            return Err(AccountError::Locked { until: None });
        }
        let challenge = self.open_challenge(&challenge_hash, now, svc)?.clone();
        let (method, step) = match self.check_proof(&challenge, &proof, now, svc) {
            (method, Ok(step)) => (method, step),
            (method, Err(reason)) => {
                let hash = Some(challenge_hash);
                self.record_mfa_failure(hash, method, reason, now, svc, sink)
                    .await;
                return Ok(());
            }
        };
        if let MfaProof::Passkey { check, .. } = &proof {
            if !self.use_passkey(check.clone(), now, sink).await {
                let hash = Some(challenge_hash);
                self.record_mfa_failure(hash, method, MfaFailure::WrongCode, now, svc, sink)
                    .await;
                return Ok(());
            }
        }
        if let Some(step) = step {
            sink.write(AccountEvent::TotpStepAccepted { step, at: now }, self)
                .await;
        }
        if let MfaProof::RecoveryCode(code_hash) = proof {
            self.use_recovery_code(code_hash, now, sink).await;
        }
        let passed = AccountEvent::MfaPassed {
            challenge_hash,
            method,
            at: now,
        };
        sink.write(passed, self).await;
        let session = NewSession {
            device: challenge.device,
            method: AuthMethod::after_second_factor(method),
            ..session
        };
        self.start_session(session, false, Vec::new(), now, svc, sink)
            .await;
        Ok(())
    }
}
