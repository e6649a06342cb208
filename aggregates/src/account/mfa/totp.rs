//! TOTP (RFC 6238): enrollment confirmed by a first code, each time step accepted once, turned
//! off after re-authentication.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;

use super::state::{MfaState, PendingTotp};
use crate::account::aggregate::Account;
use crate::account::commands::Reauthentication;
use crate::account::errors::AccountError;
use crate::account::events::{AccountEvent, MfaFailure, MfaMethod};
use crate::account::services::AccountServices;
use crate::shared::{SealedText, TotpCode};

impl MfaState {
    pub(super) fn apply_totp(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::TotpEnrollmentStarted {
                secret,
                recovery_codes,
                ..
            } => {
                self.pending_totp = Some(PendingTotp {
                    secret: secret.clone(),
                    recovery_codes: recovery_codes.clone(),
                })
            }
            AccountEvent::TotpConfirmed { step, .. } => {
                if let Some(pending) = self.pending_totp.take() {
                    self.totp_secret = Some(pending.secret);
                    self.recovery_codes = pending.recovery_codes;
                }
                self.last_step = Some(*step);
            }
            AccountEvent::TotpStepAccepted { step, .. } => {
                self.last_step = Some(self.last_step.map_or(*step, |s| s.max(*step)));
            }
            AccountEvent::TotpDisabled { .. } => {
                self.totp_secret = None;
                self.recovery_codes.clear();
                self.challenges.clear();
            }
            _ => {}
        }
    }
}

impl Account {
    pub(super) async fn start_totp_enrollment(
        &mut self,
        secret: SealedText,
        recovery_codes: Vec<String>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if self.totp_enabled() {
            return Err(AccountError::TotpAlreadyEnabled);
        }
        let started = AccountEvent::TotpEnrollmentStarted {
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
            .pending_totp
            .as_ref()
            .ok_or(AccountError::NoPendingEnrollment)?;
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
    pub(in crate::account) fn check_totp(
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
        if self.reauthenticate(proof, now, svc, sink).await? {
            sink.write(AccountEvent::TotpDisabled { at: now }, self)
                .await;
        }
        Ok(())
    }
}
