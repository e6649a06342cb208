//! Sessions: the password step of a login, and every way a session ends. Ending sessions that
//! match a rule is one move, used by every command that ends them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::aggregate::Account;
use super::commands::{NewSession, SessionCommand};
use super::errors::AccountError;
use super::events::{AccountEvent, AuthMethod, PasswordCheckPurpose, SessionEndReason};
use super::login_decision::{decide, FirstFactor, LoginDecision};
use super::mfa::NewChallenge;
use super::services::AccountServices;
use crate::shared::{ProviderId, SessionId, TokenHash, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveSession {
    pub token_hash: TokenHash,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub method: AuthMethod,
    /// It may only enroll a second factor: it was decided under a policy already.
    #[serde(default)]
    pub enrollment_only: bool,
    /// The reporting PIN unlocked reporting history in this session until then.
    #[serde(default)]
    pub pin_unlocked_until: Option<DateTime<Utc>>,
    /// The identity provider and its session id, for a sign-in through a provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<(ProviderId, Option<String>)>,
}

/// The sessions not yet ended by an event.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct Sessions(BTreeMap<SessionId, LiveSession>);

/// Which live sessions a command ends.
#[derive(Debug, Clone)]
pub enum SessionFilter {
    All,
    AllBut(SessionId),
    /// Full sessions started by this instant that did not pass a second factor.
    PasswordOnlyBy(DateTime<Utc>),
    /// Sessions past their absolute lifetime at this instant.
    ExpiredAt(DateTime<Utc>),
    /// Sessions signed in through this provider (and, if given, its session `sid`).
    FromProvider(ProviderId, Option<String>),
}

impl SessionFilter {
    fn matches(&self, id: SessionId, session: &LiveSession) -> bool {
        match self {
            Self::All => true,
            Self::AllBut(kept) => id != *kept,
            Self::PasswordOnlyBy(at) => {
                session.method == AuthMethod::Password
                    && !session.enrollment_only
                    && session.started_at <= *at
            }
            Self::ExpiredAt(now) => session.expires_at <= *now,
            Self::FromProvider(provider, sid) => match &session.provider {
                Some((from, from_sid)) => {
                    from == provider && (sid.is_none() || sid.as_ref() == from_sid.as_ref())
                }
                None => false,
            },
        }
    }
}

impl Sessions {
    pub(super) fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::SessionStarted {
                session_id,
                token_hash,
                started_at,
                expires_at,
                method,
                enrollment_only,
                sso,
                ..
            } => {
                let session = LiveSession {
                    token_hash: token_hash.clone(),
                    started_at: *started_at,
                    expires_at: *expires_at,
                    method: *method,
                    enrollment_only: *enrollment_only,
                    pin_unlocked_until: None,
                    provider: sso.as_ref().map(|s| (s.provider_id, s.sid.clone())),
                };
                self.0.insert(*session_id, session);
            }
            AccountEvent::PinVerified {
                session_id,
                unlocked_until,
                ..
            } => {
                if let Some(session) = self.0.get_mut(session_id) {
                    session.pin_unlocked_until = Some(*unlocked_until);
                }
            }
            AccountEvent::SessionEnded { session_id, .. } => {
                self.0.remove(session_id);
            }
            _ => {}
        }
    }
}

/// The parts of a password login besides the password.
struct Login {
    session: NewSession,
    challenge_hash: TokenHash,
    required_by: Vec<WorkspaceId>,
}

impl Account {
    /// Live sessions, oldest id first.
    pub fn sessions(&self) -> impl Iterator<Item = (&SessionId, &LiveSession)> {
        self.sessions.0.iter()
    }

    pub fn has_session(&self, session_id: SessionId) -> bool {
        self.sessions.0.contains_key(&session_id)
    }

    pub(super) async fn handle_session(
        &mut self,
        command: SessionCommand,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        match command {
            SessionCommand::LogIn {
                password,
                session,
                challenge_hash,
                mfa_required_by,
            } => {
                let purpose = PasswordCheckPurpose::Login;
                if self
                    .check_password(&password, purpose, now, svc, sink)
                    .await?
                {
                    let login = Login {
                        session,
                        challenge_hash,
                        required_by: mfa_required_by,
                    };
                    self.pass_password_step(login, now, svc, sink).await;
                }
                Ok(())
            }
            SessionCommand::End { session_id, reason } => {
                if !self.has_session(session_id) {
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
            SessionCommand::EndAll { reason } => {
                self.end_sessions(SessionFilter::All, reason, now, sink)
                    .await;
                Ok(())
            }
            SessionCommand::EndWithoutMfa { started_by } => {
                let filter = SessionFilter::PasswordOnlyBy(started_by);
                self.end_sessions(filter, SessionEndReason::MfaPolicy, now, sink)
                    .await;
                Ok(())
            }
        }
    }

    /// After a right password: with a second factor on, a challenge; with none but a workspace
    /// requiring one, a session that may only enroll; otherwise a session. The decision records
    /// its reason (the requiring workspaces).
    async fn pass_password_step(
        &mut self,
        login: Login,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) {
        let required_by = login.required_by;
        match decide(FirstFactor::Password, self.mfa_methods(), &required_by) {
            LoginDecision::Challenge(methods) => {
                let challenge = NewChallenge {
                    challenge_hash: login.challenge_hash,
                    device: login.session.device,
                    methods,
                    required_by,
                };
                self.issue_challenge(challenge, now, svc, sink).await
            }
            LoginDecision::EnrollmentOnly => {
                self.start_session(login.session, true, required_by, now, svc, sink)
                    .await
            }
            LoginDecision::Session => {
                self.start_session(login.session, false, required_by, now, svc, sink)
                    .await
            }
        }
    }

    /// Starts `session`, first closing sessions past their absolute lifetime so the live set
    /// stays small.
    pub(super) async fn start_session(
        &mut self,
        session: NewSession,
        enrollment_only: bool,
        required_by: Vec<WorkspaceId>,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) {
        let expired = SessionFilter::ExpiredAt(now);
        self.end_sessions(expired, SessionEndReason::Expired, now, sink)
            .await;
        let new_device = self.notices.is_new_device(session.device_hash.as_ref());
        let started = AccountEvent::SessionStarted {
            session_id: session.session_id,
            token_hash: session.token_hash,
            device: session.device,
            method: session.method,
            started_at: now,
            expires_at: now + svc.policy.session_absolute_ttl,
            idle_timeout_secs: svc.policy.session_idle_timeout.num_seconds(),
            enrollment_only,
            required_by,
            sso: session.sso.map(|sso| *sso),
            device_hash: session.device_hash,
            new_device,
        };
        sink.write(started, self).await;
    }

    /// Ends every live session that `filter` matches.
    pub(super) async fn end_sessions(
        &mut self,
        filter: SessionFilter,
        reason: SessionEndReason,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) {
        let ending: Vec<SessionId> = self
            .sessions()
            .filter(|(id, session)| filter.matches(**id, session))
            .map(|(id, _)| *id)
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
}
