//! Recovery codes: ten single-use codes, stored hashed, replaced as a set after a TOTP code.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;

use super::state::MfaState;
use crate::account::aggregate::Account;
use crate::account::commands::Reauthentication;
use crate::account::errors::AccountError;
use crate::account::events::AccountEvent;
use crate::account::services::AccountServices;
use crate::shared::TotpCode;

impl MfaState {
    pub(super) fn apply_recovery_codes(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::RecoveryCodesReplaced { recovery_codes, .. } => {
                self.recovery_codes = recovery_codes.clone();
            }
            AccountEvent::RecoveryCodeUsed { code_hash, .. } => {
                self.recovery_codes.retain(|c| c != code_hash);
            }
            _ => {}
        }
    }

    pub(super) fn knows_recovery_code(&self, code_hash: &str) -> bool {
        self.recovery_codes.iter().any(|c| c == code_hash)
    }
}

impl Account {
    pub(super) async fn replace_recovery_codes(
        &mut self,
        code: TotpCode,
        recovery_codes: Vec<String>,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.totp_enabled() {
            return Err(AccountError::TotpNotEnabled);
        }
        if self
            .reauthenticate(Reauthentication::Totp(code), now, svc, sink)
            .await?
        {
            let replaced = AccountEvent::RecoveryCodesReplaced {
                recovery_codes,
                at: now,
            };
            sink.write(replaced, self).await;
        }
        Ok(())
    }

    /// Marks a recovery code used; the count left is part of the event.
    pub(super) async fn use_recovery_code(
        &mut self,
        code_hash: String,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) {
        let remaining = (self.mfa.recovery_codes.len() as u32).saturating_sub(1);
        let used = AccountEvent::RecoveryCodeUsed {
            code_hash,
            remaining,
            at: now,
        };
        sink.write(used, self).await;
    }
}
