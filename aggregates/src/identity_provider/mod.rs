//! An OpenID Connect provider that people may sign in with: configured by a platform
//! administrator for everyone, or by a workspace's account holder for that workspace's members.
//! Its settings are events like every other security fact, and so is every sign-in through it
//! that Warden refused.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::shared::{AccountId, Clock, ProviderId, SealedText, WorkspaceId};

/// Who the provider signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "workspace_id")]
pub enum ProviderOwner {
    /// Anyone (a platform administrator configured it).
    Platform,
    /// Members of this workspace who linked the provider from their settings, only.
    Workspace(WorkspaceId),
}

/// What a provider is configured with. The client secret is sealed under the master key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderSettings {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SealedText,
    pub scopes: Vec<String>,
    /// ID token signing algorithms accepted (JOSE names: RS256, ES256, …).
    pub algorithms: Vec<String>,
    /// A first sign-in with an unknown identity and address creates an account.
    pub create_accounts: bool,
    /// An `email_verified: true` identity may be linked to the account with that address.
    pub link_by_verified_email: bool,
}

/// Why a sign-in through the provider was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInRefusal {
    /// The sign-in attempt was used already or expired.
    AttemptUsed,
    /// The browser that finished the attempt is not the one that started it.
    BrowserMismatch,
    /// The `iss` of the authorization response is not the provider's issuer (RFC 9207).
    IssuerMismatch,
    /// The provider answered the authorization request with an error.
    ProviderError,
    /// The code could not be exchanged for tokens.
    ExchangeFailed,
    /// The ID token's signature, issuer, audience, algorithm or expiry is wrong.
    TokenInvalid,
    /// The ID token was issued for another sign-in attempt.
    NonceMismatch,
    /// An account has the identity's address, and linking it by that address is not allowed.
    LinkRequired,
    /// The identity is unknown and the provider may not create accounts.
    AccountUnknown,
    /// A workspace provider named someone who is not a member who linked it.
    NotAMember,
    /// The account is locked or erased.
    AccountUnavailable,
    /// A back-channel logout token did not verify.
    LogoutTokenInvalid,
}

impl SignInRefusal {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AttemptUsed => "attempt_used",
            Self::BrowserMismatch => "browser_mismatch",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::ProviderError => "provider_error",
            Self::ExchangeFailed => "exchange_failed",
            Self::TokenInvalid => "token_invalid",
            Self::NonceMismatch => "nonce_mismatch",
            Self::LinkRequired => "link_required",
            Self::AccountUnknown => "account_unknown",
            Self::NotAMember => "not_a_member",
            Self::AccountUnavailable => "account_unavailable",
            Self::LogoutTokenInvalid => "logout_token_invalid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IdentityProviderEvent {
    Configured {
        provider_id: ProviderId,
        owner: ProviderOwner,
        settings: ProviderSettings,
        by: AccountId,
        at: DateTime<Utc>,
    },
    Changed {
        settings: ProviderSettings,
        by: AccountId,
        at: DateTime<Utc>,
    },
    Removed {
        by: AccountId,
        at: DateTime<Utc>,
    },
    SignInRefused {
        reason: SignInRefusal,
        at: DateTime<Utc>,
    },
}

impl IdentityProviderEvent {
    pub const CONFIGURED: &'static str = "identity_provider.configured";
    pub const CHANGED: &'static str = "identity_provider.changed";
    pub const REMOVED: &'static str = "identity_provider.removed";
    pub const SIGN_IN_REFUSED: &'static str = "identity_provider.sign_in_refused";
}

impl DomainEvent for IdentityProviderEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Configured { .. } => Self::CONFIGURED,
            Self::Changed { .. } => Self::CHANGED,
            Self::Removed { .. } => Self::REMOVED,
            Self::SignInRefused { .. } => Self::SIGN_IN_REFUSED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone)]
pub enum IdentityProviderCommand {
    Configure {
        provider_id: ProviderId,
        owner: ProviderOwner,
        settings: ProviderSettings,
        by: AccountId,
    },
    Change {
        settings: ProviderSettings,
        by: AccountId,
    },
    Remove {
        by: AccountId,
    },
    RecordRefusal {
        reason: SignInRefusal,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IdentityProviderError {
    #[error("no such identity provider")]
    NotFound,
    #[error("the identity provider exists already")]
    AlreadyConfigured,
    #[error("a workspace's provider signs in only members who linked it: it may neither create accounts nor link them by address")]
    WorkspaceProviderTooBroad,
}

pub struct IdentityProviderServices {
    pub clock: std::sync::Arc<dyn Clock>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityProvider {
    id: Option<ProviderId>,
    owner: Option<ProviderOwner>,
    settings: Option<ProviderSettings>,
    removed: bool,
}

impl IdentityProvider {
    /// The provider's settings while it is configured and not removed.
    pub fn live(&self) -> Option<(ProviderId, ProviderOwner, &ProviderSettings)> {
        match (self.id, self.owner, &self.settings, self.removed) {
            (Some(id), Some(owner), Some(settings), false) => Some((id, owner, settings)),
            _ => None,
        }
    }

    fn ensure_narrow(
        owner: ProviderOwner,
        settings: &ProviderSettings,
    ) -> Result<(), IdentityProviderError> {
        let broad = settings.create_accounts || settings.link_by_verified_email;
        match owner {
            ProviderOwner::Workspace(_) if broad => {
                Err(IdentityProviderError::WorkspaceProviderTooBroad)
            }
            _ => Ok(()),
        }
    }

    fn decide(
        &self,
        command: IdentityProviderCommand,
        at: DateTime<Utc>,
    ) -> Result<IdentityProviderEvent, IdentityProviderError> {
        if let IdentityProviderCommand::Configure {
            provider_id,
            owner,
            settings,
            by,
        } = command
        {
            if self.id.is_some() {
                return Err(IdentityProviderError::AlreadyConfigured);
            }
            Self::ensure_narrow(owner, &settings)?;
            return Ok(IdentityProviderEvent::Configured {
                provider_id,
                owner,
                settings,
                by,
                at,
            });
        }
        let (_, owner, _) = self.live().ok_or(IdentityProviderError::NotFound)?;
        match command {
            IdentityProviderCommand::Configure { .. } => {
                Err(IdentityProviderError::AlreadyConfigured)
            }
            IdentityProviderCommand::Change { settings, by } => {
                Self::ensure_narrow(owner, &settings)?;
                Ok(IdentityProviderEvent::Changed { settings, by, at })
            }
            IdentityProviderCommand::Remove { by } => Ok(IdentityProviderEvent::Removed { by, at }),
            IdentityProviderCommand::RecordRefusal { reason } => {
                Ok(IdentityProviderEvent::SignInRefused { reason, at })
            }
        }
    }
}

impl Aggregate for IdentityProvider {
    const TYPE: &'static str = "identity_provider";
    type Command = IdentityProviderCommand;
    type Event = IdentityProviderEvent;
    type Error = IdentityProviderError;
    type Services = IdentityProviderServices;

    async fn handle(
        &mut self,
        command: IdentityProviderCommand,
        svc: &IdentityProviderServices,
        sink: &EventSink<Self>,
    ) -> Result<(), IdentityProviderError> {
        let event = self.decide(command, svc.clock.now())?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: IdentityProviderEvent) {
        match event {
            IdentityProviderEvent::Configured {
                provider_id,
                owner,
                settings,
                ..
            } => {
                self.id = Some(provider_id);
                self.owner = Some(owner);
                self.settings = Some(settings);
            }
            IdentityProviderEvent::Changed { settings, .. } => self.settings = Some(settings),
            IdentityProviderEvent::Removed { .. } => self.removed = true,
            IdentityProviderEvent::SignInRefused { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn settings(create_accounts: bool, link_by_verified_email: bool) -> ProviderSettings {
        ProviderSettings {
            name: "Example".into(),
            issuer: "https://id.example.com".into(),
            client_id: "warden".into(),
            client_secret: SealedText("sealed".into()),
            scopes: vec!["openid".into(), "email".into()],
            algorithms: vec!["RS256".into()],
            create_accounts,
            link_by_verified_email,
        }
    }

    /// The instant the tests decide at: the domain takes time from its services, never the clock.
    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn configure(owner: ProviderOwner, settings: ProviderSettings) -> IdentityProviderCommand {
        IdentityProviderCommand::Configure {
            provider_id: ProviderId(Uuid::from_u128(7)),
            owner,
            settings,
            by: AccountId(Uuid::from_u128(1)),
        }
    }

    #[test]
    fn a_workspace_provider_can_neither_create_nor_link_accounts_by_address() {
        let workspace = ProviderOwner::Workspace(WorkspaceId(Uuid::from_u128(2)));
        let provider = IdentityProvider::default();
        for (create, link) in [(true, false), (false, true)] {
            assert_eq!(
                provider.decide(configure(workspace, settings(create, link)), at()),
                Err(IdentityProviderError::WorkspaceProviderTooBroad)
            );
        }
        assert!(provider
            .decide(configure(workspace, settings(false, false)), at())
            .is_ok());
        assert!(provider
            .decide(
                configure(ProviderOwner::Platform, settings(true, true)),
                at()
            )
            .is_ok());
    }

    #[test]
    fn a_removed_provider_takes_no_further_command() {
        let mut provider = IdentityProvider::default();
        let now = at();
        let configured = provider
            .decide(
                configure(ProviderOwner::Platform, settings(true, false)),
                now,
            )
            .expect("configured");
        provider.apply(configured);
        let by = AccountId(Uuid::from_u128(1));
        let removed = provider
            .decide(IdentityProviderCommand::Remove { by }, now)
            .expect("removed");
        provider.apply(removed);
        assert!(provider.live().is_none());
        assert_eq!(
            provider.decide(
                IdentityProviderCommand::Change {
                    settings: settings(false, false),
                    by
                },
                now
            ),
            Err(IdentityProviderError::NotFound)
        );
    }
}
