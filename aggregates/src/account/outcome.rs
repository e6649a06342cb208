//! What a command's events amount to, for the caller who sent it: a session, a challenge, a
//! session that may only enroll, a refusal that was recorded, or just done. Use cases read this
//! instead of searching the events themselves.

use chrono::{DateTime, Utc};

use super::events::{AccountEvent, MfaMethod};
use crate::shared::SessionId;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A session started.
    Authenticated {
        session_id: SessionId,
        expires_at: DateTime<Utc>,
    },
    /// A workspace requires MFA and the account has none: a session that may only enroll.
    EnrollmentOnly {
        session_id: SessionId,
        expires_at: DateTime<Utc>,
    },
    /// A second factor is due.
    Challenged {
        methods: Vec<MfaMethod>,
        expires_at: DateTime<Utc>,
    },
    /// The PIN unlocked reporting history for the session until then.
    PinUnlocked { until: DateTime<Utc> },
    /// An API token was minted.
    TokenCreated { at: DateTime<Utc> },
    /// A check failed and the failure was recorded (with a lock, if it crossed a threshold).
    Refused(Refusal),
    /// The command did what it asked, or nothing was needed.
    Done,
}

/// Which check a recorded refusal failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Password,
    /// A TOTP code, a recovery code, an emailed code or a passkey.
    SecondFactor,
    Pin,
}

impl Outcome {
    pub fn of(events: &[AccountEvent]) -> Self {
        let refusal = events.iter().find_map(|event| match event {
            AccountEvent::PasswordCheckFailed { .. } => Some(Refusal::Password),
            AccountEvent::MfaCheckFailed { .. }
            | AccountEvent::EmailCodeRejected { .. }
            | AccountEvent::PasskeyRefused { .. } => Some(Refusal::SecondFactor),
            AccountEvent::PinCheckFailed { .. } => Some(Refusal::Pin),
            _ => None,
        });
        if let Some(refusal) = refusal {
            return Self::Refused(refusal);
        }
        events
            .iter()
            .find_map(|event| match event {
                AccountEvent::MfaChallengeIssued {
                    methods,
                    expires_at,
                    ..
                } => Some(Self::Challenged {
                    methods: methods.clone(),
                    expires_at: *expires_at,
                }),
                AccountEvent::SessionStarted {
                    session_id,
                    expires_at,
                    enrollment_only,
                    ..
                } => Some(match enrollment_only {
                    true => Self::EnrollmentOnly {
                        session_id: *session_id,
                        expires_at: *expires_at,
                    },
                    false => Self::Authenticated {
                        session_id: *session_id,
                        expires_at: *expires_at,
                    },
                }),
                AccountEvent::PinVerified { unlocked_until, .. } => Some(Self::PinUnlocked {
                    until: *unlocked_until,
                }),
                AccountEvent::ApiTokenCreated { at, .. } => Some(Self::TokenCreated { at: *at }),
                _ => None,
            })
            .unwrap_or(Self::Done)
    }

    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}
