//! Emailed codes as a second factor: turned on by confirming a mailed code, then mailed for a
//! login challenge on request; each code is bound to what it was mailed for and kept hashed.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::state::MfaState;
use crate::account::aggregate::Account;
use crate::account::commands::Reauthentication;
use crate::account::errors::AccountError;
use crate::account::events::AccountEvent;
use crate::account::services::AccountServices;
use crate::shared::TokenHash;

/// Wrong codes one emailed enrollment code tolerates.
const EMAIL_CODE_TRIES: u32 = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(in crate::account) struct EmailCode {
    pub(super) code_hash: String,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) failures: u32,
}

impl EmailCode {
    pub(super) fn accepts(&self, code_hash: &str, now: DateTime<Utc>) -> bool {
        self.code_hash == code_hash && self.expires_at > now
    }
}

impl MfaState {
    pub(super) fn apply_email(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::EmailCodeSent {
                challenge_hash,
                code_hash,
                expires_at,
                ..
            } => {
                let code = EmailCode {
                    code_hash: code_hash.clone(),
                    expires_at: *expires_at,
                    failures: 0,
                };
                match challenge_hash {
                    None => self.email_enrollment = Some(code),
                    Some(hash) => {
                        if let Some(challenge) = self.challenges.get_mut(&hash.0) {
                            challenge.email_code = Some(code);
                        }
                    }
                }
            }
            AccountEvent::EmailCodeRejected { .. } => {
                if let Some(code) = self.email_enrollment.as_mut() {
                    code.failures += 1;
                }
            }
            AccountEvent::EmailMfaEnabled { .. } => {
                self.email_enabled = true;
                self.email_enrollment = None;
            }
            AccountEvent::EmailMfaDisabled { .. } => {
                self.email_enabled = false;
                if self.totp_secret.is_none() {
                    self.challenges.clear();
                }
            }
            _ => {}
        }
    }
}

/// A code to mail: its hash, when it runs out, and what the outbox derives it from again.
pub(super) struct CodeToSend {
    pub code_hash: String,
    pub expires_at: DateTime<Utc>,
    pub mail_nonce: String,
}

impl Account {
    /// Mails a code for turning emailed codes on (`challenge_hash: None`) or for an open login
    /// challenge of an account that has them on. A new code replaces the previous one.
    pub(super) async fn send_email_code(
        &mut self,
        challenge_hash: Option<TokenHash>,
        code: CodeToSend,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        match &challenge_hash {
            None if self.mfa.email_enabled => return Err(AccountError::EmailMfaAlreadyEnabled),
            None => {}
            Some(hash) => {
                self.open_challenge(hash, now, svc)?;
                if !self.mfa.email_enabled {
                    return Err(AccountError::EmailMfaNotEnabled);
                }
            }
        }
        let sent = AccountEvent::EmailCodeSent {
            challenge_hash,
            code_hash: code.code_hash,
            expires_at: code.expires_at,
            at: now,
            mail_nonce: Some(code.mail_nonce),
        };
        sink.write(sent, self).await;
        Ok(())
    }

    pub(super) async fn confirm_email(
        &mut self,
        code_hash: String,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if self.mfa.email_enabled {
            return Err(AccountError::EmailMfaAlreadyEnabled);
        }
        let Some(pending) = self.mfa.email_enrollment.as_ref() else {
            return Err(AccountError::NoPendingEnrollment);
        };
        // Five tries per code; after that, or after it expired, only a new code helps.
        if pending.expires_at <= now || pending.failures >= EMAIL_CODE_TRIES {
            return Err(AccountError::MfaCodeInvalid);
        }
        let event = if pending.code_hash == code_hash {
            AccountEvent::EmailMfaEnabled { at: now }
        } else {
            AccountEvent::EmailCodeRejected { at: now }
        };
        sink.write(event, self).await;
        Ok(())
    }

    pub(super) async fn disable_email(
        &mut self,
        password: SecretString,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.mfa.email_enabled {
            return Err(AccountError::EmailMfaNotEnabled);
        }
        let proof = Reauthentication::Password(password);
        if self.reauthenticate(proof, now, svc, sink).await? {
            sink.write(AccountEvent::EmailMfaDisabled { at: now }, self)
                .await;
        }
        Ok(())
    }
}
