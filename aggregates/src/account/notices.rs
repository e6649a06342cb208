//! Security notices: which ones the owner turned off, and the devices the account has signed in
//! from (so that a sign-in from another one can be told apart).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::aggregate::Account;
use super::events::AccountEvent;

/// How many devices an account remembers; the oldest is forgotten first.
const KNOWN_DEVICES: usize = 20;

/// A mail the owner gets when something happens to their account's security. All are on until
/// the owner turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// A sign-in from a device the account has not signed in from before.
    NewSignIn,
    PasswordChanged,
    /// A second factor was turned off (by the owner, or by support).
    MfaDisabled,
    RecoveryCodesRegenerated,
    ApiTokenCreated,
    /// Too many wrong passwords locked the account.
    AccountLocked,
}

impl Notice {
    pub const ALL: [Notice; 6] = [
        Self::NewSignIn,
        Self::PasswordChanged,
        Self::MfaDisabled,
        Self::RecoveryCodesRegenerated,
        Self::ApiTokenCreated,
        Self::AccountLocked,
    ];

    /// The notice an event calls for, if any.
    pub fn for_event(event: &AccountEvent) -> Option<Self> {
        match event {
            AccountEvent::SessionStarted {
                new_device: true, ..
            } => Some(Self::NewSignIn),
            AccountEvent::PasswordChanged { .. } => Some(Self::PasswordChanged),
            AccountEvent::TotpDisabled { .. }
            | AccountEvent::EmailMfaDisabled { .. }
            | AccountEvent::MfaReset { .. } => Some(Self::MfaDisabled),
            AccountEvent::RecoveryCodesReplaced { .. } => Some(Self::RecoveryCodesRegenerated),
            AccountEvent::ApiTokenCreated { .. } => Some(Self::ApiTokenCreated),
            AccountEvent::LockedOut { .. } => Some(Self::AccountLocked),
            _ => None,
        }
    }

    /// The event types that may call for a notice.
    pub const EVENT_TYPES: [&'static str; 8] = [
        AccountEvent::SESSION_STARTED,
        AccountEvent::PASSWORD_CHANGED,
        AccountEvent::TOTP_DISABLED,
        AccountEvent::EMAIL_MFA_DISABLED,
        AccountEvent::MFA_RESET,
        AccountEvent::RECOVERY_CODES_REPLACED,
        AccountEvent::API_TOKEN_CREATED,
        AccountEvent::LOCKED_OUT,
    ];
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Notices {
    off: BTreeSet<Notice>,
    /// Keyed hashes of the devices signed in from, newest last.
    known_devices: Vec<String>,
}

impl Notices {
    pub(super) fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::NoticesChanged { off, .. } => {
                self.off = off.iter().copied().collect();
            }
            AccountEvent::SessionStarted {
                device_hash: Some(hash),
                ..
            } => {
                self.known_devices.retain(|known| known != hash);
                self.known_devices.push(hash.clone());
                if self.known_devices.len() > KNOWN_DEVICES {
                    self.known_devices.remove(0);
                }
            }
            _ => {}
        }
    }

    /// Whether a sign-in from `device_hash` is from a device not seen before. The first device
    /// an account signs in from (or the first after devices were first remembered) is not news.
    pub(super) fn is_new_device(&self, device_hash: Option<&String>) -> bool {
        device_hash.is_some_and(|hash| {
            !self.known_devices.is_empty() && !self.known_devices.contains(hash)
        })
    }
}

impl Account {
    /// Whether the owner wants `notice` mailed.
    pub fn wants(&self, notice: Notice) -> bool {
        !self.notices.off.contains(&notice)
    }

    /// Turns off exactly the notices in `off`, the others on.
    pub(super) async fn set_notices(
        &mut self,
        off: BTreeSet<Notice>,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) {
        if off == self.notices.off {
            return;
        }
        let changed = AccountEvent::NoticesChanged {
            off: off.into_iter().collect(),
            at: now,
        };
        sink.write(changed, self).await;
    }
}
