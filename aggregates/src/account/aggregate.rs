//! The Account aggregate: its state is one slice per concern, each slice applies the events it
//! reads, and each part of the account handles its own commands. `handle` and `apply` route.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::api_tokens::ApiTokens;
use super::commands::{AccountCommand, IdentityCommand};
use super::errors::AccountError;
use super::events::AccountEvent;
use super::identities::Identities;
use super::mfa::MfaState;
use super::notices::Notices;
use super::passkeys::Passkeys;
use super::password::PasswordState;
use super::pin::PinState;
use super::profile::Profile;
use super::services::AccountServices;
use super::sessions::Sessions;
use super::support::Support;

/// An account's security state, rebuilt from its events. Only what decisions need is kept: live
/// sessions are dropped from here when they end (their history lives in a projection).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub(super) profile: Profile,
    pub(super) password: PasswordState,
    pub(super) sessions: Sessions,
    pub(super) api_tokens: ApiTokens,
    pub(super) mfa: MfaState,
    pub(super) pin: PinState,
    pub(super) support: Support,
    #[serde(default)]
    pub(super) identities: Identities,
    #[serde(default)]
    pub(super) notices: Notices,
    #[serde(default)]
    pub(super) passkeys: Passkeys,
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
        if let AccountCommand::Identity(IdentityCommand::Register(registration)) = command {
            return self
                .register_through_provider(registration, now, sink)
                .await;
        }
        self.ensure_active()?;
        match command {
            AccountCommand::Register { .. } => Err(AccountError::AlreadyRegistered),
            AccountCommand::Password(command) => {
                self.handle_password(command, now, svc, sink).await
            }
            AccountCommand::Session(command) => self.handle_session(command, now, svc, sink).await,
            AccountCommand::Mfa(command) => self.handle_mfa(command, now, svc, sink).await,
            AccountCommand::ApiToken(command) => {
                self.handle_api_token(command, now, svc, sink).await
            }
            AccountCommand::Pin(command) => self.handle_pin(command, now, svc, sink).await,
            AccountCommand::Support(command) => self.handle_support(command, now, sink).await,
            AccountCommand::Identity(command) => {
                self.handle_identity(command, now, svc, sink).await
            }
            AccountCommand::Passkey(command) => self.handle_passkey(command, now, svc, sink).await,
            AccountCommand::SetNotices { off } => {
                self.set_notices(off, now, sink).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: AccountEvent) {
        self.profile.apply(&event);
        self.password.apply(&event);
        self.sessions.apply(&event);
        self.api_tokens.apply(&event);
        self.mfa.apply(&event);
        self.pin.apply(&event);
        self.support.apply(&event);
        self.identities.apply(&event);
        self.notices.apply(&event);
        self.passkeys.apply(&event);
    }
}

impl Account {
    /// Commands other than registration need a registered account that was not erased.
    fn ensure_active(&self) -> Result<(), AccountError> {
        if self.profile.id.is_none() {
            return Err(AccountError::NotRegistered);
        }
        if self.profile.erased {
            return Err(AccountError::Erased);
        }
        Ok(())
    }
}
