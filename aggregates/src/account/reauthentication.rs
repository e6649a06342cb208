//! Re-authentication: the password, a current TOTP code or a passkey, asked again before a sensitive
//! change. One move for every command that needs it; a wrong answer is recorded like any other
//! failed check and answers `Ok(false)`, so the command ends without its change but with the
//! failure kept.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;

use super::aggregate::Account;
use super::commands::Reauthentication;
use super::errors::AccountError;
use super::events::{AccountEvent, MfaFailure, MfaMethod, PasswordCheckPurpose};
use super::services::AccountServices;

impl Account {
    /// A failed check and, when it crossed a threshold, the lock it brings: the one way every
    /// check (password, second factor, PIN) records a refusal. Both land in the same commit.
    pub(super) async fn record_refusal(
        &mut self,
        failed: AccountEvent,
        lock: Option<AccountEvent>,
        sink: &EventSink<Self>,
    ) {
        sink.write(failed, self).await;
        if let Some(lock) = lock {
            sink.write(lock, self).await;
        }
    }

    pub(super) async fn reauthenticate(
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
            Reauthentication::Passkey { state, check } => {
                self.ensure_unlocked(now)?;
                if self.passkey_reauthentication(now) != Some(&state) {
                    return Err(AccountError::PasskeyCeremonyInvalid);
                }
                if self.use_passkey(check, now, sink).await {
                    return Ok(true);
                }
                let reason = MfaFailure::WrongCode;
                self.record_mfa_failure(None, MfaMethod::Passkey, reason, now, svc, sink)
                    .await;
                Ok(false)
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
