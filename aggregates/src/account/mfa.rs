//! The Account's second-factor rules: TOTP enrolment, the login challenge, recovery codes,
//! replay protection and the MFA lock-out.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;

use super::aggregate::Account;
use super::commands::{MfaProof, NewSession, Reauthentication};
use super::errors::AccountError;
use super::events::{AccountEvent, AuthMethod, MfaFailure, MfaMethod, PasswordCheckPurpose};
use super::services::AccountServices;
use crate::shared::{SealedText, TokenHash, TotpCode};
use secrecy::SecretString;

/// Wrong codes one emailed enrolment code tolerates.
const EMAIL_CODE_TRIES: u32 = 5;

impl Account {
    pub(super) async fn start_totp_enrolment(
        &mut self,
        secret: SealedText,
        recovery_codes: Vec<String>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if self.totp_enabled() {
            return Err(AccountError::TotpAlreadyEnabled);
        }
        let started = AccountEvent::TotpEnrolmentStarted {
            secret,
            recovery_codes,
            at: now,
        };
        sink.write(started, self).await;
        Ok(())
    }

    pub(super) async fn confirm_totp(
        &mut self,
        code: &TotpCode,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        let pending = self
            .mfa
            .pending
            .as_ref()
            .ok_or(AccountError::NoPendingEnrolment)?;
        match svc.totp.matching_step(&pending.secret, code, now) {
            Some(step) => {
                sink.write(AccountEvent::TotpConfirmed { step, at: now }, self)
                    .await
            }
            None => {
                let reason = MfaFailure::WrongCode;
                self.record_mfa_failure(None, MfaMethod::Totp, reason, now, svc, sink)
                    .await
            }
        }
        Ok(())
    }

    /// The step of a current code for the confirmed secret, refusing steps already used.
    fn check_totp(
        &self,
        code: &TotpCode,
        now: DateTime<Utc>,
        svc: &AccountServices,
    ) -> Result<u64, MfaFailure> {
        let secret = self.mfa.totp_secret.as_ref().ok_or(MfaFailure::WrongCode)?;
        let step = svc
            .totp
            .matching_step(secret, code, now)
            .ok_or(MfaFailure::WrongCode)?;
        match self.mfa.last_step {
            Some(last) if step <= last => Err(MfaFailure::Replayed),
            _ => Ok(step),
        }
    }

    /// Records a failed second-factor check and, at the threshold, the lock.
    async fn record_mfa_failure(
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
        sink.write(failed, self).await;
        if failures >= svc.policy.mfa_lock_threshold && !self.hard_locked {
            let locked = AccountEvent::MfaLockedOut {
                consecutive_failures: failures,
                at: now,
            };
            sink.write(locked, self).await;
        }
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
        if self.hard_locked {
            return Err(AccountError::Locked { until: None });
        }
        let challenge = self
            .mfa
            .challenges
            .get(&challenge_hash.0)
            .filter(|c| c.expires_at > now && c.failures < svc.policy.mfa_challenge_attempts)
            .cloned()
            .ok_or(AccountError::ChallengeInvalid)?;
        let (method, outcome) = match &proof {
            MfaProof::Totp(code) => (MfaMethod::Totp, self.check_totp(code, now, svc).map(Some)),
            MfaProof::EmailCode(hash) => {
                let valid = challenge
                    .email_code
                    .as_ref()
                    .is_some_and(|c| c.code_hash == *hash && c.expires_at > now);
                (
                    MfaMethod::Email,
                    valid.then_some(None).ok_or(MfaFailure::WrongCode),
                )
            }
            MfaProof::RecoveryCode(hash) => {
                let known = self.mfa.recovery_codes.contains(hash);
                (
                    MfaMethod::RecoveryCode,
                    known.then_some(None).ok_or(MfaFailure::WrongCode),
                )
            }
        };
        let step = match outcome {
            Ok(step) => step,
            Err(reason) => {
                let hash = Some(challenge_hash);
                self.record_mfa_failure(hash, method, reason, now, svc, sink)
                    .await;
                return Ok(());
            }
        };
        if let Some(step) = step {
            sink.write(AccountEvent::TotpStepAccepted { step, at: now }, self)
                .await;
        }
        if let MfaProof::RecoveryCode(code_hash) = proof {
            let remaining = (self.mfa.recovery_codes.len() as u32).saturating_sub(1);
            let used = AccountEvent::RecoveryCodeUsed {
                code_hash,
                remaining,
                at: now,
            };
            sink.write(used, self).await;
        }
        let passed = AccountEvent::MfaPassed {
            challenge_hash,
            method,
            at: now,
        };
        sink.write(passed, self).await;
        let session = NewSession {
            device: challenge.device,
            method: match method {
                MfaMethod::Totp => AuthMethod::Totp,
                MfaMethod::Email => AuthMethod::EmailCode,
                MfaMethod::RecoveryCode => AuthMethod::RecoveryCode,
            },
            ..session
        };
        self.start_session(session, now, svc, sink).await;
        Ok(())
    }

    /// Mails a code for turning emailed codes on (`challenge_hash: None`) or for an open login
    /// challenge of an account that has them on. A new code replaces the previous one.
    pub(super) async fn send_email_code(
        &mut self,
        challenge_hash: Option<TokenHash>,
        code_hash: String,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        match &challenge_hash {
            None if self.mfa.email_enabled => return Err(AccountError::EmailMfaAlreadyEnabled),
            None => {}
            Some(hash) => {
                let open = self.mfa.challenges.get(&hash.0).is_some_and(|c| {
                    c.expires_at > now && c.failures < svc.policy.mfa_challenge_attempts
                });
                if !open {
                    return Err(AccountError::ChallengeInvalid);
                }
                if !self.mfa.email_enabled {
                    return Err(AccountError::EmailMfaNotEnabled);
                }
            }
        }
        let sent = AccountEvent::EmailCodeSent {
            challenge_hash,
            code_hash,
            expires_at,
            at: now,
        };
        sink.write(sent, self).await;
        Ok(())
    }

    pub(super) async fn confirm_email_mfa(
        &mut self,
        code_hash: String,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if self.mfa.email_enabled {
            return Err(AccountError::EmailMfaAlreadyEnabled);
        }
        let Some(pending) = self.mfa.email_enrolment.as_ref() else {
            return Err(AccountError::NoPendingEnrolment);
        };
        // Five tries per code; after that, or after it expired, only a new code helps.
        if pending.expires_at <= now || pending.failures >= EMAIL_CODE_TRIES {
            return Err(AccountError::MfaCodeInvalid);
        }
        if pending.code_hash != code_hash {
            sink.write(AccountEvent::EmailCodeRejected { at: now }, self)
                .await;
            return Ok(());
        }
        sink.write(AccountEvent::EmailMfaEnabled { at: now }, self)
            .await;
        Ok(())
    }

    pub(super) async fn disable_email_mfa(
        &mut self,
        password: &SecretString,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.mfa.email_enabled {
            return Err(AccountError::EmailMfaNotEnabled);
        }
        let purpose = PasswordCheckPurpose::Reauthentication;
        if !self
            .check_password(password, purpose, now, svc, sink)
            .await?
        {
            return Ok(());
        }
        sink.write(AccountEvent::EmailMfaDisabled { at: now }, self)
            .await;
        Ok(())
    }

    /// Turns TOTP off after re-authentication. A wrong password or code is recorded and the
    /// command ends without turning anything off.
    pub(super) async fn disable_totp(
        &mut self,
        proof: Reauthentication,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.totp_enabled() {
            return Err(AccountError::TotpNotEnabled);
        }
        if !self.reauthenticate(proof, now, svc, sink).await? {
            return Ok(());
        }
        sink.write(AccountEvent::TotpDisabled { at: now }, self)
            .await;
        Ok(())
    }

    pub(super) async fn replace_recovery_codes(
        &mut self,
        code: &TotpCode,
        recovery_codes: Vec<String>,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.totp_enabled() {
            return Err(AccountError::TotpNotEnabled);
        }
        let proof = Reauthentication::Totp(code.clone());
        if !self.reauthenticate(proof, now, svc, sink).await? {
            return Ok(());
        }
        let replaced = AccountEvent::RecoveryCodesReplaced {
            recovery_codes,
            at: now,
        };
        sink.write(replaced, self).await;
        Ok(())
    }

    /// Checks a password or a current TOTP code, recording a failure as such.
    async fn reauthenticate(
        &mut self,
        proof: Reauthentication,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<bool, AccountError> {
        match proof {
            Reauthentication::Password(password) => {
                let purpose = PasswordCheckPurpose::Reauthentication;
                self.check_password(&password, purpose, now, svc, sink)
                    .await
            }
            Reauthentication::Totp(code) => {
                self.ensure_unlocked(now)?;
                match self.check_totp(&code, now, svc) {
                    Ok(step) => {
                        sink.write(AccountEvent::TotpStepAccepted { step, at: now }, self)
                            .await;
                        Ok(true)
                    }
                    Err(reason) => {
                        self.record_mfa_failure(None, MfaMethod::Totp, reason, now, svc, sink)
                            .await;
                        Ok(false)
                    }
                }
            }
        }
    }
}
