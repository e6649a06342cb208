use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::commands::{AccountCommand, NewApiToken, NewSession};
use super::errors::AccountError;
use super::events::{
    AccountEvent, AuthMethod, MfaMethod, PasswordChangeVia, PasswordCheckPurpose, SessionEndReason,
};
use super::login_decision::{decide, FirstFactor, LoginDecision};
use super::services::AccountServices;
use crate::shared::{
    AccountId, PasswordHash, Scope, SealedText, SessionId, TokenHash, TokenId, WorkspaceId,
};

/// An account's security state, rebuilt from its events. Only what decisions need is kept: live
/// sessions are dropped from here when they end (their history lives in a projection).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: Option<AccountId>,
    pub email: Option<SealedText>,
    pub display_name: Option<SealedText>,
    pub registered_at: Option<DateTime<Utc>>,
    password_hash: Option<PasswordHash>,
    pub consecutive_failures: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub hard_locked: bool,
    pub sessions: BTreeMap<SessionId, LiveSession>,
    pending_reset: Option<PendingReset>,
    /// Live (unrevoked) API tokens.
    #[serde(default)]
    pub api_tokens: BTreeMap<TokenId, ApiTokenState>,
    #[serde(default)]
    pub(super) mfa: MfaState,
    #[serde(default)]
    pub is_admin: bool,
    #[serde(default)]
    pub open_access_request: Option<Uuid>,
    #[serde(default)]
    pin: Option<PinState>,
    #[serde(default)]
    pub erased: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PinState {
    hash: PasswordHash,
    consecutive_failures: u32,
    locked_until: Option<DateTime<Utc>>,
}

/// Second factors: the TOTP secret (sealed), recovery code hashes, open login challenges.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct MfaState {
    pub(super) totp_secret: Option<SealedText>,
    pub(super) pending: Option<PendingTotp>,
    /// The newest TOTP step ever accepted; it and older steps are never accepted again.
    pub(super) last_step: Option<u64>,
    pub(super) recovery_codes: Vec<String>,
    pub(super) challenges: BTreeMap<String, Challenge>,
    pub(super) consecutive_failures: u32,
    #[serde(default)]
    pub(super) email_enabled: bool,
    /// The code mailed to turn emailed codes on.
    #[serde(default)]
    pub(super) email_enrolment: Option<EmailCode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct EmailCode {
    pub(super) code_hash: String,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) failures: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct PendingTotp {
    pub(super) secret: SealedText,
    pub(super) recovery_codes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Challenge {
    pub(super) device: Option<SealedText>,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) failures: u32,
    #[serde(default)]
    pub(super) email_code: Option<EmailCode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiTokenState {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub first_used: bool,
    pub expiry_recorded: bool,
    pub last_rate_limited_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveSession {
    pub token_hash: TokenHash,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub method: AuthMethod,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingReset {
    token_hash: TokenHash,
    expires_at: DateTime<Utc>,
    requested_at: DateTime<Utc>,
}

impl Account {
    pub fn totp_enabled(&self) -> bool {
        self.mfa.totp_secret.is_some()
    }

    pub fn totp_pending(&self) -> bool {
        self.mfa.pending.is_some()
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
        if !methods.is_empty() && !self.mfa.recovery_codes.is_empty() {
            methods.push(MfaMethod::RecoveryCode);
        }
        methods
    }
}

/// The parts of a password login besides the password.
struct Login {
    session: NewSession,
    challenge_hash: TokenHash,
    mfa_required_by: Vec<WorkspaceId>,
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = AccountServices;

    async fn handle(
        &mut self,
        command: AccountCommand,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        let now = svc.clock.now();
        if let AccountCommand::Register {
            account_id,
            email,
            display_name,
            password_hash,
        } = command
        {
            return self
                .register(account_id, email, display_name, password_hash, now, sink)
                .await;
        }
        if self.id.is_none() {
            return Err(AccountError::NotRegistered);
        }
        if self.erased {
            return Err(AccountError::Erased);
        }
        match command {
            AccountCommand::Register { .. } => Err(AccountError::AlreadyRegistered),
            AccountCommand::LogIn {
                password,
                session,
                challenge_hash,
                mfa_required_by,
            } => {
                let login = Login {
                    session,
                    challenge_hash,
                    mfa_required_by,
                };
                self.log_in(&password, login, now, svc, sink).await
            }
            AccountCommand::EndSessionsWithoutMfa => {
                let unverified: Vec<SessionId> = self
                    .sessions
                    .iter()
                    .filter(|(_, s)| s.method == AuthMethod::Password)
                    .map(|(id, _)| *id)
                    .collect();
                for session_id in unverified {
                    let ended = AccountEvent::SessionEnded {
                        session_id,
                        reason: SessionEndReason::MfaPolicy,
                        at: now,
                    };
                    sink.write(ended, self).await;
                }
                Ok(())
            }
            AccountCommand::CompleteMfa {
                challenge_hash,
                proof,
                session,
            } => {
                self.complete_mfa(challenge_hash, proof, session, now, svc, sink)
                    .await
            }
            AccountCommand::StartTotpEnrolment {
                secret,
                recovery_code_hashes,
            } => {
                self.start_totp_enrolment(secret, recovery_code_hashes, now, sink)
                    .await
            }
            AccountCommand::ConfirmTotp { code } => self.confirm_totp(&code, now, svc, sink).await,
            AccountCommand::DisableTotp { proof } => self.disable_totp(proof, now, svc, sink).await,
            AccountCommand::ReplaceRecoveryCodes {
                code,
                recovery_code_hashes,
            } => {
                self.replace_recovery_codes(&code, recovery_code_hashes, now, svc, sink)
                    .await
            }
            AccountCommand::SendEmailCode {
                challenge_hash,
                code_hash,
                expires_at,
            } => {
                self.send_email_code(challenge_hash, code_hash, expires_at, now, svc, sink)
                    .await
            }
            AccountCommand::ConfirmEmailMfa { code_hash } => {
                self.confirm_email_mfa(code_hash, now, sink).await
            }
            AccountCommand::DisableEmailMfa { password } => {
                self.disable_email_mfa(&password, now, svc, sink).await
            }
            AccountCommand::RequestAccess { request_id, reason } => {
                if self.open_access_request.is_none() {
                    let requested = AccountEvent::AccessRequested {
                        request_id,
                        reason,
                        at: now,
                    };
                    sink.write(requested, self).await;
                }
                Ok(())
            }
            AccountCommand::DecideAccessRequest {
                request_id,
                approve,
                by,
            } => {
                if self.open_access_request != Some(request_id) {
                    return Err(AccountError::AccessRequestNotFound);
                }
                let decided = AccountEvent::AccessRequestDecided {
                    request_id,
                    approved: approve,
                    by,
                    at: now,
                };
                sink.write(decided, self).await;
                if approve {
                    sink.write(AccountEvent::Unlocked { by, at: now }, self)
                        .await;
                }
                Ok(())
            }
            AccountCommand::SetPin { password, pin_hash } => {
                let purpose = PasswordCheckPurpose::Reauthentication;
                if self
                    .check_password(&password, purpose, now, svc, sink)
                    .await?
                {
                    sink.write(AccountEvent::PinSet { pin_hash, at: now }, self)
                        .await;
                }
                Ok(())
            }
            AccountCommand::RemovePin { password } => {
                if self.pin.is_none() {
                    return Err(AccountError::PinNotSet);
                }
                let purpose = PasswordCheckPurpose::Reauthentication;
                if self
                    .check_password(&password, purpose, now, svc, sink)
                    .await?
                {
                    sink.write(AccountEvent::PinRemoved { at: now }, self).await;
                }
                Ok(())
            }
            AccountCommand::VerifyPin { pin, session_id } => {
                self.verify_pin(&pin, session_id, now, svc, sink).await
            }
            AccountCommand::Erase { by } => {
                self.end_sessions(None, SessionEndReason::Revoked, now, sink)
                    .await;
                let tokens: Vec<TokenId> = self.api_tokens.keys().copied().collect();
                for token_id in tokens {
                    let revoked = AccountEvent::ApiTokenRevoked { token_id, at: now };
                    sink.write(revoked, self).await;
                }
                sink.write(AccountEvent::Erased { by, at: now }, self).await;
                Ok(())
            }
            AccountCommand::GrantAdmin => {
                if !self.is_admin {
                    sink.write(AccountEvent::AdminGranted { at: now }, self)
                        .await;
                }
                Ok(())
            }
            AccountCommand::Unlock { by } => {
                sink.write(AccountEvent::Unlocked { by, at: now }, self)
                    .await;
                Ok(())
            }
            AccountCommand::ResetMfa { by } => {
                sink.write(AccountEvent::MfaReset { by, at: now }, self)
                    .await;
                self.end_sessions(None, SessionEndReason::Revoked, now, sink)
                    .await;
                Ok(())
            }
            AccountCommand::EndSession { session_id, reason } => {
                self.end_session(session_id, reason, now, sink).await
            }
            AccountCommand::RevokeAllSessions { reason } => {
                self.end_sessions(None, reason, now, sink).await;
                Ok(())
            }
            AccountCommand::ChangePassword {
                current_password,
                new_password_hash,
                keep_session,
            } => {
                self.change_password(
                    &current_password,
                    new_password_hash,
                    keep_session,
                    now,
                    svc,
                    sink,
                )
                .await
            }
            AccountCommand::RequestPasswordReset {
                token_hash,
                expires_at,
            } => {
                // One reset mail a minute at most, so nobody can flood a mailbox with them.
                let recent = self
                    .pending_reset
                    .as_ref()
                    .is_some_and(|p| now - p.requested_at < chrono::Duration::minutes(1));
                if !recent {
                    let event = AccountEvent::PasswordResetRequested {
                        token_hash,
                        expires_at,
                        at: now,
                    };
                    sink.write(event, self).await;
                }
                Ok(())
            }
            AccountCommand::ResetPassword {
                token_hash,
                new_password_hash,
            } => {
                self.reset_password(token_hash, new_password_hash, now, sink)
                    .await
            }
            AccountCommand::CreateApiToken { password, token } => {
                self.create_api_token(&password, token, now, svc, sink)
                    .await
            }
            AccountCommand::RevokeApiToken { token_id } => {
                self.token(token_id)?;
                let revoked = AccountEvent::ApiTokenRevoked { token_id, at: now };
                sink.write(revoked, self).await;
                Ok(())
            }
            AccountCommand::RecordApiTokenUse { token_id } => {
                if !self.token(token_id)?.first_used {
                    let used = AccountEvent::ApiTokenFirstUsed { token_id, at: now };
                    sink.write(used, self).await;
                }
                Ok(())
            }
            AccountCommand::RecordApiTokenExpired { token_id } => {
                let token = self.token(token_id)?;
                let expired = token.expires_at.is_some_and(|e| e <= now);
                if expired && !token.expiry_recorded {
                    let event = AccountEvent::ApiTokenExpired { token_id, at: now };
                    sink.write(event, self).await;
                }
                Ok(())
            }
            AccountCommand::RecordApiTokenRateLimited { token_id } => {
                let quiet = self
                    .token(token_id)?
                    .last_rate_limited_at
                    .is_none_or(|last| now - last >= chrono::Duration::minutes(1));
                if quiet {
                    let event = AccountEvent::ApiTokenRateLimited { token_id, at: now };
                    sink.write(event, self).await;
                }
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::Registered {
                account_id,
                email,
                display_name,
                password_hash,
                at,
            } => {
                self.id = Some(account_id);
                self.email = Some(email);
                self.display_name = display_name;
                self.password_hash = Some(password_hash);
                self.registered_at = Some(at);
            }
            AccountEvent::PasswordCheckFailed {
                consecutive_failures,
                ..
            } => self.consecutive_failures = consecutive_failures,
            AccountEvent::LockedOut { until, .. } => match until {
                Some(until) => self.locked_until = Some(until),
                None => self.hard_locked = true,
            },
            AccountEvent::SessionStarted {
                session_id,
                token_hash,
                started_at,
                expires_at,
                method,
                ..
            } => {
                self.consecutive_failures = 0;
                self.locked_until = None;
                self.sessions.insert(
                    session_id,
                    LiveSession {
                        token_hash,
                        started_at,
                        expires_at,
                        method,
                    },
                );
            }
            AccountEvent::SessionEnded { session_id, .. } => {
                self.sessions.remove(&session_id);
            }
            AccountEvent::PasswordChanged {
                password_hash, via, ..
            } => {
                self.password_hash = Some(password_hash);
                // Either the current password was presented or control of the mailbox was
                // proven: the failure count starts again and a temporary lock lifts (a hard
                // lock stays until an administrator lifts it).
                self.consecutive_failures = 0;
                self.locked_until = None;
                if via == PasswordChangeVia::Reset {
                    self.pending_reset = None;
                }
            }
            AccountEvent::PasswordResetRequested {
                token_hash,
                expires_at,
                at,
            } => {
                self.pending_reset = Some(PendingReset {
                    token_hash,
                    expires_at,
                    requested_at: at,
                })
            }
            AccountEvent::ApiTokenCreated {
                token_id,
                name,
                scopes,
                expires_at,
                ..
            } => {
                self.consecutive_failures = 0;
                self.api_tokens.insert(
                    token_id,
                    ApiTokenState {
                        name,
                        scopes,
                        expires_at,
                        first_used: false,
                        expiry_recorded: false,
                        last_rate_limited_at: None,
                    },
                );
            }
            AccountEvent::ApiTokenFirstUsed { token_id, .. } => {
                if let Some(token) = self.api_tokens.get_mut(&token_id) {
                    token.first_used = true;
                }
            }
            AccountEvent::ApiTokenExpired { token_id, .. } => {
                if let Some(token) = self.api_tokens.get_mut(&token_id) {
                    token.expiry_recorded = true;
                }
            }
            AccountEvent::ApiTokenRateLimited { token_id, at } => {
                if let Some(token) = self.api_tokens.get_mut(&token_id) {
                    token.last_rate_limited_at = Some(at);
                }
            }
            AccountEvent::ApiTokenRevoked { token_id, .. } => {
                self.api_tokens.remove(&token_id);
            }
            AccountEvent::TotpEnrolmentStarted {
                secret,
                recovery_codes,
                ..
            } => {
                self.mfa.pending = Some(PendingTotp {
                    secret,
                    recovery_codes,
                })
            }
            AccountEvent::TotpConfirmed { step, .. } => {
                if let Some(pending) = self.mfa.pending.take() {
                    self.mfa.totp_secret = Some(pending.secret);
                    self.mfa.recovery_codes = pending.recovery_codes;
                }
                self.mfa.last_step = Some(step);
            }
            AccountEvent::TotpDisabled { .. } => {
                self.mfa.totp_secret = None;
                self.mfa.recovery_codes.clear();
                self.mfa.challenges.clear();
            }
            AccountEvent::RecoveryCodesReplaced { recovery_codes, .. } => {
                self.mfa.recovery_codes = recovery_codes;
            }
            AccountEvent::MfaChallengeIssued {
                challenge_hash,
                device,
                expires_at,
                at,
                ..
            } => {
                self.consecutive_failures = 0;
                self.locked_until = None;
                // Challenges past their time are dropped here so the open set stays small.
                self.mfa.challenges.retain(|_, c| c.expires_at > at);
                self.mfa.challenges.insert(
                    challenge_hash.0,
                    Challenge {
                        device,
                        expires_at,
                        failures: 0,
                        email_code: None,
                    },
                );
            }
            AccountEvent::MfaCheckFailed {
                challenge_hash,
                consecutive_failures,
                ..
            } => {
                self.mfa.consecutive_failures = consecutive_failures;
                let challenge = challenge_hash.and_then(|h| self.mfa.challenges.get_mut(&h.0));
                if let Some(challenge) = challenge {
                    challenge.failures += 1;
                }
            }
            AccountEvent::MfaLockedOut { .. } => self.hard_locked = true,
            AccountEvent::TotpStepAccepted { step, .. } => {
                self.mfa.last_step = Some(self.mfa.last_step.map_or(step, |s| s.max(step)));
            }
            AccountEvent::RecoveryCodeUsed { code_hash, .. } => {
                self.mfa.recovery_codes.retain(|c| *c != code_hash);
            }
            AccountEvent::MfaPassed { challenge_hash, .. } => {
                self.mfa.challenges.remove(&challenge_hash.0);
                self.mfa.consecutive_failures = 0;
            }
            AccountEvent::AdminGranted { .. } => self.is_admin = true,
            AccountEvent::Erased { .. } => self.erased = true,
            AccountEvent::PinSet { pin_hash, .. } => {
                self.pin = Some(PinState {
                    hash: pin_hash,
                    consecutive_failures: 0,
                    locked_until: None,
                })
            }
            AccountEvent::PinRemoved { .. } => self.pin = None,
            AccountEvent::PinVerified { .. } => {
                if let Some(pin) = self.pin.as_mut() {
                    pin.consecutive_failures = 0;
                    pin.locked_until = None;
                }
            }
            AccountEvent::PinCheckFailed {
                consecutive_failures,
                ..
            } => {
                if let Some(pin) = self.pin.as_mut() {
                    pin.consecutive_failures = consecutive_failures;
                }
            }
            AccountEvent::PinLocked { until, .. } => {
                if let Some(pin) = self.pin.as_mut() {
                    pin.locked_until = Some(until);
                    pin.consecutive_failures = 0;
                }
            }
            AccountEvent::AccessRequested { request_id, .. } => {
                self.open_access_request = Some(request_id)
            }
            AccountEvent::AccessRequestDecided { .. } => self.open_access_request = None,
            AccountEvent::EmailCodeSent {
                challenge_hash,
                code_hash,
                expires_at,
                ..
            } => {
                let code = EmailCode {
                    code_hash,
                    expires_at,
                    failures: 0,
                };
                match challenge_hash {
                    None => self.mfa.email_enrolment = Some(code),
                    Some(hash) => {
                        if let Some(challenge) = self.mfa.challenges.get_mut(&hash.0) {
                            challenge.email_code = Some(code);
                        }
                    }
                }
            }
            AccountEvent::EmailCodeRejected { .. } => {
                if let Some(code) = self.mfa.email_enrolment.as_mut() {
                    code.failures += 1;
                }
            }
            AccountEvent::EmailMfaEnabled { .. } => {
                self.mfa.email_enabled = true;
                self.mfa.email_enrolment = None;
            }
            AccountEvent::EmailMfaDisabled { .. } => {
                self.mfa.email_enabled = false;
                if self.mfa.totp_secret.is_none() {
                    self.mfa.challenges.clear();
                }
            }
            AccountEvent::Unlocked { .. } => {
                self.hard_locked = false;
                self.locked_until = None;
                self.consecutive_failures = 0;
                self.mfa.consecutive_failures = 0;
            }
            AccountEvent::MfaReset { .. } => {
                self.mfa = MfaState {
                    last_step: self.mfa.last_step,
                    ..MfaState::default()
                };
            }
        }
    }
}

impl Account {
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.hard_locked || self.locked_until.is_some_and(|until| until > now)
    }

    fn token(&self, token_id: TokenId) -> Result<&ApiTokenState, AccountError> {
        self.api_tokens
            .get(&token_id)
            .ok_or(AccountError::TokenNotFound)
    }

    async fn create_api_token(
        &mut self,
        password: &SecretString,
        token: NewApiToken,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if token.expires_at.is_some_and(|e| e <= now) {
            return Err(AccountError::ExpiryInPast);
        }
        if self.api_tokens.values().any(|t| t.name == token.name) {
            return Err(AccountError::TokenNameTaken);
        }
        let purpose = PasswordCheckPurpose::Reauthentication;
        if !self
            .check_password(password, purpose, now, svc, sink)
            .await?
        {
            return Ok(());
        }
        let created = AccountEvent::ApiTokenCreated {
            token_id: token.token_id,
            name: token.name,
            token_hash: token.token_hash,
            scopes: token.scopes,
            expires_at: token.expires_at,
            at: now,
        };
        sink.write(created, self).await;
        Ok(())
    }

    pub fn pin_set(&self) -> bool {
        self.pin.is_some()
    }

    async fn verify_pin(
        &mut self,
        candidate: &SecretString,
        session_id: SessionId,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.sessions.contains_key(&session_id) {
            return Err(AccountError::SessionNotFound);
        }
        let pin = self.pin.clone().ok_or(AccountError::PinNotSet)?;
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
        sink.write(failed, self).await;
        if failures >= svc.policy.pin_attempts {
            let locked = AccountEvent::PinLocked {
                until: now + svc.policy.pin_lockout,
                at: now,
            };
            sink.write(locked, self).await;
        }
        Ok(())
    }

    pub(super) fn ensure_unlocked(&self, now: DateTime<Utc>) -> Result<(), AccountError> {
        if self.hard_locked {
            return Err(AccountError::Locked { until: None });
        }
        match self.locked_until {
            Some(until) if until > now => Err(AccountError::Locked { until: Some(until) }),
            _ => Ok(()),
        }
    }

    async fn register(
        &mut self,
        account_id: AccountId,
        email: SealedText,
        display_name: Option<SealedText>,
        password_hash: PasswordHash,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if self.id.is_some() {
            return Err(AccountError::AlreadyRegistered);
        }
        let event = AccountEvent::Registered {
            account_id,
            email,
            display_name,
            password_hash,
            at: now,
        };
        sink.write(event, self).await;
        Ok(())
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
        self.ensure_unlocked(now)?;
        let Some(hash) = self.password_hash.as_ref() else {
            return Err(AccountError::NotRegistered);
        };
        if svc.passwords.verify(hash, candidate).await {
            return Ok(true);
        }
        let failures = self.consecutive_failures.saturating_add(1);
        let failed = AccountEvent::PasswordCheckFailed {
            purpose,
            consecutive_failures: failures,
            at: now,
        };
        sink.write(failed, self).await;
        let lock = if failures >= svc.policy.hard_lock_threshold {
            Some(None)
        } else {
            svc.policy
                .lockout_window(failures)
                .map(|window| Some(now + window))
        };
        if let Some(until) = lock {
            let locked = AccountEvent::LockedOut {
                until,
                consecutive_failures: failures,
                at: now,
            };
            sink.write(locked, self).await;
        }
        Ok(false)
    }

    /// The password step. With a second factor on, a challenge; with none but a workspace
    /// requiring one, a session that may only enrol; otherwise a session. The decision records
    /// its reason (the requiring workspaces).
    async fn log_in(
        &mut self,
        password: &SecretString,
        login: Login,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self
            .check_password(password, PasswordCheckPurpose::Login, now, svc, sink)
            .await?
        {
            return Ok(());
        }
        let required_by = login.mfa_required_by;
        match decide(FirstFactor::Password, self.mfa_methods(), &required_by) {
            LoginDecision::Challenge(methods) => {
                let issued = AccountEvent::MfaChallengeIssued {
                    challenge_hash: login.challenge_hash,
                    device: login.session.device,
                    methods,
                    expires_at: now + svc.policy.mfa_challenge_ttl,
                    at: now,
                    required_by,
                };
                sink.write(issued, self).await;
            }
            LoginDecision::EnrolmentOnly => {
                self.start_session_with(login.session, true, required_by, now, svc, sink)
                    .await
            }
            LoginDecision::Session => {
                self.start_session_with(login.session, false, required_by, now, svc, sink)
                    .await
            }
        }
        Ok(())
    }

    pub(super) async fn start_session(
        &mut self,
        session: NewSession,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) {
        self.start_session_with(session, false, Vec::new(), now, svc, sink)
            .await
    }

    /// Starts `session`, first closing sessions past their absolute lifetime.
    async fn start_session_with(
        &mut self,
        session: NewSession,
        enrolment_only: bool,
        required_by: Vec<WorkspaceId>,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) {
        // Sessions past their absolute lifetime are closed here so the live set stays small.
        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for session_id in expired {
            let ended = AccountEvent::SessionEnded {
                session_id,
                reason: SessionEndReason::Expired,
                at: now,
            };
            sink.write(ended, self).await;
        }
        let started = AccountEvent::SessionStarted {
            session_id: session.session_id,
            token_hash: session.token_hash,
            device: session.device,
            method: session.method,
            started_at: now,
            expires_at: now + svc.policy.session_absolute_ttl,
            idle_timeout_secs: svc.policy.session_idle_timeout.num_seconds(),
            enrolment_only,
            required_by,
        };
        sink.write(started, self).await;
    }

    async fn end_session(
        &mut self,
        session_id: SessionId,
        reason: SessionEndReason,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.sessions.contains_key(&session_id) {
            return Err(AccountError::SessionNotFound);
        }
        let ended = AccountEvent::SessionEnded {
            session_id,
            reason,
            at: now,
        };
        sink.write(ended, self).await;
        Ok(())
    }

    /// Ends every live session except `keep`.
    pub(super) async fn end_sessions(
        &mut self,
        keep: Option<SessionId>,
        reason: SessionEndReason,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) {
        let ending: Vec<SessionId> = self
            .sessions
            .keys()
            .filter(|id| Some(**id) != keep)
            .copied()
            .collect();
        for session_id in ending {
            let ended = AccountEvent::SessionEnded {
                session_id,
                reason,
                at: now,
            };
            sink.write(ended, self).await;
        }
    }

    async fn change_password(
        &mut self,
        current_password: &SecretString,
        new_password_hash: PasswordHash,
        keep_session: Option<SessionId>,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        let purpose = PasswordCheckPurpose::Reauthentication;
        if !self
            .check_password(current_password, purpose, now, svc, sink)
            .await?
        {
            return Ok(());
        }
        let changed = AccountEvent::PasswordChanged {
            password_hash: new_password_hash,
            via: PasswordChangeVia::Change,
            at: now,
        };
        sink.write(changed, self).await;
        self.end_sessions(keep_session, SessionEndReason::PasswordChanged, now, sink)
            .await;
        Ok(())
    }

    async fn reset_password(
        &mut self,
        token_hash: TokenHash,
        new_password_hash: PasswordHash,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        let valid = self
            .pending_reset
            .as_ref()
            .is_some_and(|p| p.token_hash == token_hash && p.expires_at > now);
        if !valid {
            return Err(AccountError::ResetTokenInvalid);
        }
        let changed = AccountEvent::PasswordChanged {
            password_hash: new_password_hash,
            via: PasswordChangeVia::Reset,
            at: now,
        };
        sink.write(changed, self).await;
        self.end_sessions(None, SessionEndReason::PasswordReset, now, sink)
            .await;
        Ok(())
    }
}
