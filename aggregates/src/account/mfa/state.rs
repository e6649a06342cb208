//! The second factors' state: the TOTP secret (sealed), recovery code hashes, emailed codes and
//! open login challenges; and the routing of second-factor commands to their rules.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::challenge::Challenge;
use super::email_code::{CodeToSend, EmailCode};
use crate::account::aggregate::Account;
use crate::account::commands::MfaCommand;
use crate::account::errors::AccountError;
use crate::account::events::{AccountEvent, MfaMethod};
use crate::account::services::AccountServices;
use crate::shared::SealedText;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(in crate::account) struct MfaState {
    pub(super) totp_secret: Option<SealedText>,
    pub(super) pending_totp: Option<PendingTotp>,
    /// The newest TOTP step ever accepted; it and older steps are never accepted again.
    pub(super) last_step: Option<u64>,
    pub(super) recovery_codes: Vec<String>,
    pub(super) challenges: BTreeMap<String, Challenge>,
    pub(super) consecutive_failures: u32,
    pub(super) email_enabled: bool,
    /// The code mailed to turn emailed codes on.
    pub(super) email_enrollment: Option<EmailCode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct PendingTotp {
    pub(super) secret: SealedText,
    pub(super) recovery_codes: Vec<String>,
}

impl MfaState {
    pub(in crate::account) fn apply(&mut self, event: &AccountEvent) {
        self.apply_totp(event);
        self.apply_recovery_codes(event);
        self.apply_email(event);
        self.apply_challenges(event);
        match event {
            AccountEvent::Unlocked { .. } => self.consecutive_failures = 0,
            AccountEvent::MfaReset { .. } => {
                // Used steps stay used: a code seen before the reset is still refused after.
                *self = Self {
                    last_step: self.last_step,
                    ..Self::default()
                };
            }
            _ => {}
        }
    }
}

impl Account {
    pub fn totp_enabled(&self) -> bool {
        self.mfa.totp_secret.is_some()
    }

    pub fn totp_pending(&self) -> bool {
        self.mfa.pending_totp.is_some()
    }

    pub fn recovery_codes_remaining(&self) -> usize {
        self.mfa.recovery_codes.len()
    }

    pub fn email_mfa_enabled(&self) -> bool {
        self.mfa.email_enabled
    }

    /// Second factors that are on, in the order a login offers them.
    pub fn mfa_methods(&self) -> Vec<MfaMethod> {
        let mut methods = Vec::new();
        if self.totp_enabled() {
            methods.push(MfaMethod::Totp);
        }
        if self.mfa.email_enabled {
            methods.push(MfaMethod::Email);
        }
        if !self.passkeys().is_empty() {
            methods.push(MfaMethod::Passkey);
        }
        if !methods.is_empty() && !self.mfa.recovery_codes.is_empty() {
            methods.push(MfaMethod::RecoveryCode);
        }
        methods
    }

    pub(in crate::account) async fn handle_mfa(
        &mut self,
        command: MfaCommand,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        match command {
            MfaCommand::Complete {
                challenge_hash,
                proof,
                session,
            } => {
                self.complete_mfa(challenge_hash, proof, session, now, svc, sink)
                    .await
            }
            MfaCommand::StartTotpEnrollment {
                secret,
                recovery_code_hashes,
            } => {
                self.start_totp_enrollment(secret, recovery_code_hashes, now, sink)
                    .await
            }
            MfaCommand::ConfirmTotp { code } => self.confirm_totp(&code, now, svc, sink).await,
            MfaCommand::DisableTotp { proof } => self.disable_totp(proof, now, svc, sink).await,
            MfaCommand::ReplaceRecoveryCodes {
                code,
                recovery_code_hashes,
            } => {
                self.replace_recovery_codes(code, recovery_code_hashes, now, svc, sink)
                    .await
            }
            MfaCommand::SendEmailCode {
                challenge_hash,
                code_hash,
                expires_at,
                mail_nonce,
            } => {
                let code = CodeToSend {
                    code_hash,
                    expires_at,
                    mail_nonce,
                };
                self.send_email_code(challenge_hash, code, now, svc, sink)
                    .await
            }
            MfaCommand::ConfirmEmail { code_hash } => {
                self.confirm_email(code_hash, now, sink).await
            }
            MfaCommand::DisableEmail { password } => {
                self.disable_email(password, now, svc, sink).await
            }
            MfaCommand::RequestPasskey {
                challenge_hash,
                state,
            } => {
                self.open_challenge(&challenge_hash, now, svc)?;
                let requested = AccountEvent::MfaPasskeyRequested {
                    challenge_hash,
                    ceremony: state,
                    at: now,
                };
                sink.write(requested, self).await;
                Ok(())
            }
        }
    }
}
