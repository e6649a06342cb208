//! Who is asking and from where: the authenticated caller, what it may do, and the metadata every
//! event of its commands carries.

use std::collections::HashMap;

use warden_aggregates::shared::{AccountId, Scope, SessionId, TokenId};

use super::error::AppError;
use super::problem::ProblemCode;
use crate::adapters::sealing::{DataKey, MasterKey};

/// The request's id and origin; travels into every event's metadata (personal parts sealed).
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A caller holding a live credential: a session, or an API access token with scopes.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub account_id: AccountId,
    pub credential: Credential,
    /// A workspace requires MFA and the account has none yet: only enrollment is open.
    pub enrollment_only: bool,
    /// The account's profile as the credential check found it (opened once, kept in memory).
    pub profile: Option<std::sync::Arc<crate::app::accounts::Profile>>,
}

#[derive(Debug, Clone)]
pub enum Credential {
    Session(SessionId),
    ApiToken {
        token_id: TokenId,
        scopes: Vec<Scope>,
    },
}

impl Authenticated {
    pub fn session_id(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session(id) => Some(id),
            Credential::ApiToken { .. } => None,
        }
    }

    /// Sessions may do all their account may; a token only what its scopes allow.
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        self.not_enrolling()?;
        match &self.credential {
            Credential::Session(_) => Ok(()),
            Credential::ApiToken { scopes, .. } if scopes.contains(&scope) => Ok(()),
            Credential::ApiToken { .. } => Err(AppError::with(
                ProblemCode::InsufficientScope,
                format!("this API token lacks the `{}` scope", scope.as_str()),
            )),
        }
    }

    fn not_enrolling(&self) -> Result<(), AppError> {
        if self.enrollment_only {
            return Err(AppError::new(ProblemCode::MfaEnrollmentRequired));
        }
        Ok(())
    }

    /// For what an API token may never do: mint tokens, change the password or MFA, set a PIN,
    /// log a session out.
    pub fn require_session(&self) -> Result<SessionId, AppError> {
        self.not_enrolling()?;
        self.require_session_while_enrolling()
    }

    /// For what an enrollment-only session may do: read the account, enroll a factor, log out.
    pub fn require_session_while_enrolling(&self) -> Result<SessionId, AppError> {
        self.session_id()
            .ok_or_else(|| AppError::new(ProblemCode::SessionRequired))
    }

    /// Reading the caller's own account: an enrollment-only session may, a token needs `read`.
    pub fn require_read_of_own_account(&self) -> Result<(), AppError> {
        if self.enrollment_only {
            self.require_session_while_enrolling().map(|_| ())
        } else {
            self.require(Scope::Read)
        }
    }
}

/// Event metadata: the request id and actor in the clear, IP and user agent sealed under the
/// subject account's key.
pub fn metadata(
    ctx: &RequestContext,
    key: Option<&DataKey>,
    actor: Option<AccountId>,
) -> HashMap<String, String> {
    let mut metadata = HashMap::new();
    metadata.insert("request_id".into(), ctx.request_id.clone());
    metadata.insert(
        "actor".into(),
        actor.map_or_else(|| "anonymous".to_string(), |a| a.to_string()),
    );
    if let Some(key) = key {
        if let Some(ip) = &ctx.ip {
            metadata.insert("ip".into(), key.seal(ip).0);
        }
        if let Some(ua) = &ctx.user_agent {
            metadata.insert("user_agent".into(), key.seal(ua).0);
        }
    }
    metadata
}

/// The device a request comes from, as its account remembers it: a keyed hash of the user agent,
/// bound to the account.
pub fn device_hash(
    master: &MasterKey,
    account_id: AccountId,
    ctx: &RequestContext,
) -> Option<String> {
    let agent = ctx.user_agent.as_deref()?;
    Some(master.derived_secret("device", &format!("{account_id}:{agent}")))
}

/// The metadata of a command `who` sends: also how it authenticated.
pub fn caller_metadata(
    who: &Authenticated,
    ctx: &RequestContext,
    key: Option<&DataKey>,
) -> HashMap<String, String> {
    let mut metadata = metadata(ctx, key, Some(who.account_id));
    match &who.credential {
        Credential::Session(id) => {
            metadata.insert("auth_method".into(), "session".into());
            metadata.insert("session_id".into(), id.to_string());
        }
        Credential::ApiToken { token_id, .. } => {
            metadata.insert("auth_method".into(), "api_token".into());
            metadata.insert("api_token_id".into(), token_id.to_string());
        }
    }
    metadata
}
