//! Identities at OpenID Connect providers linked to the account, and signing in through them.
//! The provider is trusted to have authenticated the person, so a provider sign-in is never asked
//! for a second factor, and no workspace policy ends its session (`login_decision`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::aggregate::Account;
use super::commands::{IdentityCommand, NewIdentity, NewSession};
use super::errors::AccountError;
use super::events::{AccountEvent, SessionEndReason};
use super::login_decision::{decide, FirstFactor, LoginDecision};
use super::services::AccountServices;
use super::sessions::SessionFilter;
use crate::shared::{ProviderId, SealedText, TokenHash};

/// What the provider said about a sign-in, kept with the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderSignIn {
    pub provider_id: ProviderId,
    pub issuer: String,
    /// The provider's session id (`sid`), for its back-channel logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// How the provider authenticated the person (`amr`, `acr`), as it reported it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

/// How an identity came to be linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkVia {
    /// The account was created by its first sign-in through the provider.
    Created,
    /// A platform provider vouched for the address (`email_verified`) and allows linking by it.
    VerifiedEmail,
    /// The signed-in owner linked it from their settings.
    Settings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkedIdentity {
    pub issuer: String,
    /// The provider's subject, sealed under the account's data key.
    pub subject: SealedText,
    pub linked_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingLink {
    provider_id: ProviderId,
    link_hash: TokenHash,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Identities {
    linked: BTreeMap<ProviderId, LinkedIdentity>,
    #[serde(default)]
    pending: Option<PendingLink>,
}

impl Identities {
    pub(super) fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::IdentityLinked {
                provider_id,
                issuer,
                subject,
                at,
                ..
            } => {
                let linked = LinkedIdentity {
                    issuer: issuer.clone(),
                    subject: subject.clone(),
                    linked_at: *at,
                };
                self.linked.insert(*provider_id, linked);
                self.pending = None;
            }
            AccountEvent::IdentityLinkStarted {
                provider_id,
                link_hash,
                expires_at,
                ..
            } => {
                self.pending = Some(PendingLink {
                    provider_id: *provider_id,
                    link_hash: link_hash.clone(),
                    expires_at: *expires_at,
                });
            }
            AccountEvent::IdentityUnlinked { provider_id, .. } => {
                self.linked.remove(provider_id);
            }
            _ => {}
        }
    }
}

impl Account {
    pub(super) async fn handle_identity(
        &mut self,
        command: IdentityCommand,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        match command {
            IdentityCommand::Register(_) => Err(AccountError::AlreadyRegistered),
            IdentityCommand::LogIn { session, link } => {
                self.log_in_through_provider(session, link, now, svc, sink)
                    .await
            }
            IdentityCommand::StartLink {
                provider_id,
                link_hash,
                expires_at,
                proof,
            } => {
                if self.has_identity(provider_id) {
                    return Err(AccountError::IdentityAlreadyLinked);
                }
                if self.reauthenticate(proof, now, svc, sink).await? {
                    let started = AccountEvent::IdentityLinkStarted {
                        provider_id,
                        link_hash,
                        expires_at,
                        at: now,
                    };
                    sink.write(started, self).await;
                }
                Ok(())
            }
            IdentityCommand::Link {
                identity,
                link_hash,
            } => self.link_identity(identity, link_hash, now, sink).await,
            IdentityCommand::Unlink { provider_id } => {
                self.unlink_identity(provider_id, now, sink).await
            }
            IdentityCommand::EndProviderSessions { provider_id, sid } => {
                let filter = SessionFilter::FromProvider(provider_id, sid);
                self.end_sessions(filter, SessionEndReason::ProviderLogout, now, sink)
                    .await;
                Ok(())
            }
        }
    }

    pub fn identities(&self) -> impl Iterator<Item = (&ProviderId, &LinkedIdentity)> {
        self.identities.linked.iter()
    }

    pub fn has_identity(&self, provider_id: ProviderId) -> bool {
        self.identities.linked.contains_key(&provider_id)
    }

    pub(super) async fn register_through_provider(
        &mut self,
        registration: super::commands::ProviderRegistration,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if self.profile.id.is_some() {
            return Err(AccountError::AlreadyRegistered);
        }
        let registered = AccountEvent::RegisteredThroughProvider {
            account_id: registration.account_id,
            email: registration.email,
            display_name: registration.display_name,
            at: now,
        };
        sink.write(registered, self).await;
        self.link(registration.identity, now, sink).await;
        Ok(())
    }

    async fn link(&mut self, identity: NewIdentity, now: DateTime<Utc>, sink: &EventSink<Self>) {
        let linked = AccountEvent::IdentityLinked {
            provider_id: identity.provider_id,
            issuer: identity.issuer,
            subject: identity.subject,
            via: identity.via,
            at: now,
        };
        sink.write(linked, self).await;
    }

    /// Links `identity` from the owner's settings: the link they started, re-authenticated, for
    /// this provider, not expired.
    async fn link_identity(
        &mut self,
        identity: NewIdentity,
        link_hash: TokenHash,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if self.has_identity(identity.provider_id) {
            return Err(AccountError::IdentityAlreadyLinked);
        }
        let waiting = self.identities.pending.as_ref().is_some_and(|p| {
            p.provider_id == identity.provider_id && p.link_hash == link_hash && p.expires_at > now
        });
        if !waiting {
            return Err(AccountError::LinkInvalid);
        }
        self.link(identity, now, sink).await;
        Ok(())
    }

    /// Unlinks a provider, unless that would leave no way to sign in (no password and no other
    /// provider). Its sessions end with it.
    pub(super) async fn unlink_identity(
        &mut self,
        provider_id: ProviderId,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        if !self.has_identity(provider_id) {
            return Err(AccountError::IdentityNotLinked);
        }
        if !self.has_password() && self.identities.linked.len() == 1 {
            return Err(AccountError::LastWayToSignIn);
        }
        let unlinked = AccountEvent::IdentityUnlinked {
            provider_id,
            at: now,
        };
        sink.write(unlinked, self).await;
        let filter = SessionFilter::FromProvider(provider_id, None);
        self.end_sessions(filter, SessionEndReason::Revoked, now, sink)
            .await;
        Ok(())
    }

    /// A sign-in the provider vouched for: the identity must be linked already or be linked by
    /// this sign-in (`link`, decided by the use case from the provider's rules). A locked
    /// account does not sign in this way either.
    pub(super) async fn log_in_through_provider(
        &mut self,
        session: NewSession,
        link: Option<NewIdentity>,
        now: DateTime<Utc>,
        svc: &AccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        self.ensure_unlocked(now)?;
        let Some(provider_id) = session.sso.as_ref().map(|s| s.provider_id) else {
            return Err(AccountError::IdentityNotLinked);
        };
        if !self.has_identity(provider_id) {
            match link {
                Some(identity) if identity.provider_id == provider_id => {
                    self.link(identity, now, sink).await
                }
                _ => return Err(AccountError::IdentityNotLinked),
            }
        }
        match decide(FirstFactor::Sso, self.mfa_methods(), &[]) {
            LoginDecision::Session => {
                self.start_session(session, false, Vec::new(), now, svc, sink)
                    .await;
                Ok(())
            }
            // The provider is trusted: no other decision is reachable for an SSO sign-in.
            LoginDecision::Challenge(_) | LoginDecision::EnrollmentOnly => {
                Err(AccountError::IdentityNotLinked)
            }
        }
    }
}
