//! Who the account is: its identity, sealed contact data, admin grant and erasure.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::aggregate::Account;
use super::errors::AccountError;
use super::events::AccountEvent;
use crate::shared::{AccountId, PasswordHash, SealedText};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Profile {
    pub(super) id: Option<AccountId>,
    pub(super) email: Option<SealedText>,
    pub(super) display_name: Option<SealedText>,
    pub(super) registered_at: Option<DateTime<Utc>>,
    pub(super) is_admin: bool,
    #[serde(default)]
    pub(super) is_auditor: bool,
    pub(super) erased: bool,
}

impl Profile {
    pub(super) fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Registered {
                account_id,
                email,
                display_name,
                at,
                ..
            }
            | AccountEvent::RegisteredThroughProvider {
                account_id,
                email,
                display_name,
                at,
            } => {
                self.id = Some(*account_id);
                self.email = Some(email.clone());
                self.display_name = display_name.clone();
                self.registered_at = Some(*at);
            }
            AccountEvent::AdminGranted { .. } => self.is_admin = true,
            AccountEvent::AuditorGranted { .. } => self.is_auditor = true,
            AccountEvent::AuditorRevoked { .. } => self.is_auditor = false,
            AccountEvent::Erased { .. } => self.erased = true,
            _ => {}
        }
    }
}

impl Account {
    pub fn id(&self) -> Option<AccountId> {
        self.profile.id
    }

    /// The address, sealed under the account's data key.
    pub fn email(&self) -> Option<&SealedText> {
        self.profile.email.as_ref()
    }

    pub fn display_name(&self) -> Option<&SealedText> {
        self.profile.display_name.as_ref()
    }

    pub fn registered_at(&self) -> Option<DateTime<Utc>> {
        self.profile.registered_at
    }

    pub fn is_admin(&self) -> bool {
        self.profile.is_admin
    }

    /// A platform auditor: reads the audit trail, histories and the chain; nothing more.
    pub fn is_auditor(&self) -> bool {
        self.profile.is_auditor
    }

    pub fn is_erased(&self) -> bool {
        self.profile.erased
    }

    pub(super) async fn register(
        &mut self,
        account_id: AccountId,
        email: SealedText,
        display_name: Option<SealedText>,
        password_hash: PasswordHash,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if self.profile.id.is_some() {
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
}
