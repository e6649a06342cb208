//! Configuring OpenID Connect providers: platform administrators for everyone, a workspace's
//! account holders for that workspace. A provider's settings are events of its own aggregate,
//! read back from the store (there are few providers), so a removed provider is refused at once
//! by every process.

use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::identity_provider::{
    IdentityProvider, IdentityProviderCommand, ProviderOwner, ProviderSettings,
};
use warden_aggregates::shared::{ProviderId, Scope, WorkspaceId};
use warden_aggregates::workspace::Role;

use super::command::{Commands, Settle};
use super::context::{Authenticated, RequestContext};
use super::error::AppError;
use super::problem::ProblemCode;
use crate::adapters::keys::KeyRing;
use crate::adapters::oidc::{self, Oidc};

const NAME_MAX: usize = 100;
const FIELD_MAX: usize = 2_000;
const SCOPES_MAX: usize = 20;

/// What a caller configures; absent fields keep their value on a change.
#[derive(Debug, Default, Clone)]
pub struct ProviderInput {
    pub name: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<secrecy::SecretString>,
    pub scopes: Option<Vec<String>>,
    pub algorithms: Option<Vec<String>>,
    pub create_accounts: Option<bool>,
    pub link_by_verified_email: Option<bool>,
}

/// A provider as its administrators see it (never its secret).
#[derive(Debug, Clone)]
pub struct ProviderRecord {
    pub id: ProviderId,
    pub owner: ProviderOwner,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub algorithms: Vec<String>,
    pub create_accounts: bool,
    pub link_by_verified_email: bool,
}

impl ProviderRecord {
    fn of(id: ProviderId, owner: ProviderOwner, settings: &ProviderSettings) -> Self {
        Self {
            id,
            owner,
            name: settings.name.clone(),
            issuer: settings.issuer.clone(),
            client_id: settings.client_id.clone(),
            scopes: settings.scopes.clone(),
            algorithms: settings.algorithms.clone(),
            create_accounts: settings.create_accounts,
            link_by_verified_email: settings.link_by_verified_email,
        }
    }
}

#[derive(Clone)]
pub struct IdentityProviders {
    commands: Commands,
    keys: KeyRing,
    oidc: Oidc,
    pool: PgPool,
}

/// The purpose a provider's client secret is sealed for.
pub fn secret_purpose(id: ProviderId) -> String {
    format!("identity-provider/{id}/client-secret")
}

impl IdentityProviders {
    pub fn new(commands: Commands, keys: KeyRing, oidc: Oidc, pool: PgPool) -> Self {
        Self {
            commands,
            keys,
            oidc,
            pool,
        }
    }

    /// A live provider and its settings.
    pub async fn live(
        &self,
        id: ProviderId,
    ) -> Result<(ProviderOwner, ProviderSettings), AppError> {
        let (provider, _) = self
            .commands
            .store()
            .load::<IdentityProvider>(&id.to_string())
            .await?;
        provider
            .live()
            .map(|(_, owner, settings)| (owner, settings.clone()))
            .ok_or_else(|| AppError::new(ProblemCode::IdentityProviderNotFound))
    }

    /// Every live provider, oldest first.
    pub async fn all(&self) -> Result<Vec<ProviderRecord>, AppError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT aggregate_id FROM events
             WHERE aggregate_type = 'identity_provider' AND sequence = 1
             ORDER BY global_position",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut providers = Vec::new();
        for id in ids.iter().filter_map(|id| Uuid::parse_str(id).ok()) {
            let id = ProviderId(id);
            match self.live(id).await {
                Ok((owner, settings)) => providers.push(ProviderRecord::of(id, owner, &settings)),
                Err(e) if e.code() == ProblemCode::IdentityProviderNotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(providers)
    }

    /// The providers the public sign-in page shows: the platform's.
    pub async fn public(&self) -> Result<Vec<ProviderRecord>, AppError> {
        let all = self.all().await?;
        Ok(all
            .into_iter()
            .filter(|p| p.owner == ProviderOwner::Platform)
            .collect())
    }

    /// The providers `owner`'s administrators see, after checking the caller is one of them.
    pub async fn owned(
        &self,
        who: &Authenticated,
        owner: ProviderOwner,
    ) -> Result<Vec<ProviderRecord>, AppError> {
        self.require_administrator(who, owner).await?;
        let all = self.all().await?;
        Ok(all.into_iter().filter(|p| p.owner == owner).collect())
    }

    pub async fn get(
        &self,
        who: &Authenticated,
        owner: ProviderOwner,
        id: ProviderId,
    ) -> Result<ProviderRecord, AppError> {
        self.require_administrator(who, owner).await?;
        let (found, settings) = self.live(id).await?;
        if found != owner {
            return Err(AppError::new(ProblemCode::IdentityProviderNotFound));
        }
        Ok(ProviderRecord::of(id, owner, &settings))
    }

    pub async fn configure(
        &self,
        who: &Authenticated,
        owner: ProviderOwner,
        input: ProviderInput,
        ctx: &RequestContext,
    ) -> Result<ProviderRecord, AppError> {
        self.require_administrator(who, owner).await?;
        let id = ProviderId(Uuid::now_v7());
        let settings = self.settings(id, None, input).await?;
        let by = who.account_id;
        let command = || IdentityProviderCommand::Configure {
            provider_id: id,
            owner,
            settings: settings.clone(),
            by,
        };
        self.run(who, id, ctx, command).await?;
        Ok(ProviderRecord::of(id, owner, &settings))
    }

    pub async fn change(
        &self,
        who: &Authenticated,
        owner: ProviderOwner,
        id: ProviderId,
        input: ProviderInput,
        ctx: &RequestContext,
    ) -> Result<ProviderRecord, AppError> {
        self.get(who, owner, id).await?;
        let (_, current) = self.live(id).await?;
        let settings = self.settings(id, Some(current), input).await?;
        let by = who.account_id;
        let command = || IdentityProviderCommand::Change {
            settings: settings.clone(),
            by,
        };
        self.run(who, id, ctx, command).await?;
        Ok(ProviderRecord::of(id, owner, &settings))
    }

    pub async fn remove(
        &self,
        who: &Authenticated,
        owner: ProviderOwner,
        id: ProviderId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        self.get(who, owner, id).await?;
        let by = who.account_id;
        let command = || IdentityProviderCommand::Remove { by };
        self.run(who, id, ctx, command).await
    }

    async fn run(
        &self,
        who: &Authenticated,
        id: ProviderId,
        ctx: &RequestContext,
        command: impl Fn() -> IdentityProviderCommand,
    ) -> Result<(), AppError> {
        let metadata = self.commands.metadata_for(who, ctx).await?;
        self.commands
            .run::<IdentityProvider>(&id.to_string(), command, &metadata, Settle::Views)
            .await?;
        Ok(())
    }

    /// Platform providers are a platform administrator's; a workspace's are its account
    /// holders'. Anyone else is told the workspace does not exist, as elsewhere.
    async fn require_administrator(
        &self,
        who: &Authenticated,
        owner: ProviderOwner,
    ) -> Result<(), AppError> {
        match owner {
            ProviderOwner::Platform => self.commands.require_admin(who).await,
            ProviderOwner::Workspace(workspace) => self.require_holder(who, workspace).await,
        }
    }

    async fn require_holder(&self, who: &Authenticated, id: WorkspaceId) -> Result<(), AppError> {
        who.require(Scope::Write)?;
        let workspace = self.commands.load_workspace(id).await?;
        match workspace.role_of(who.account_id) {
            Some(Role::AccountHolder) => Ok(()),
            Some(_) => Err(AppError::new(ProblemCode::AccountHolderRequired)),
            None => Err(AppError::new(ProblemCode::WorkspaceNotFound)),
        }
    }

    /// The settings `input` makes of `current` (all required when there is none), checked: the
    /// issuer must answer discovery, and the algorithms be asymmetric ones.
    async fn settings(
        &self,
        id: ProviderId,
        current: Option<ProviderSettings>,
        input: ProviderInput,
    ) -> Result<ProviderSettings, AppError> {
        let invalid = |detail: &str| AppError::with(ProblemCode::InvalidIdentityProvider, detail);
        let required = |field: Option<String>, name: &str, old: Option<&String>| {
            field
                .or_else(|| old.cloned())
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| invalid(&format!("`{name}` is required")))
        };
        let name = required(input.name, "name", current.as_ref().map(|c| &c.name))?;
        let issuer = required(input.issuer, "issuer", current.as_ref().map(|c| &c.issuer))?;
        let client_id = required(
            input.client_id,
            "client_id",
            current.as_ref().map(|c| &c.client_id),
        )?;
        if name.chars().count() > NAME_MAX
            || issuer.len() > FIELD_MAX
            || client_id.len() > FIELD_MAX
        {
            return Err(invalid(
                "name has at most 100 characters, issuer and client_id 2000",
            ));
        }
        let client_secret = match (input.client_secret, &current) {
            (Some(secret), _) => {
                use secrecy::ExposeSecret;
                let secret = secret.expose_secret();
                if secret.is_empty() || secret.len() > FIELD_MAX {
                    return Err(invalid("`client_secret` has 1 to 2000 characters"));
                }
                self.keys
                    .master()
                    .seal_secret(&secret_purpose(id), secret.as_bytes())
            }
            (None, Some(current)) => current.client_secret.clone(),
            (None, None) => return Err(invalid("`client_secret` is required")),
        };
        let (scopes, algorithms) =
            scopes_and_algorithms(input.scopes, input.algorithms, current.as_ref())?;
        let issuer_changed = current.as_ref().is_none_or(|c| c.issuer != issuer);
        if issuer_changed {
            self.oidc
                .discover(&issuer)
                .await
                .map_err(|e| invalid(&format!("discovery at the issuer failed: {e}")))?;
        }
        let flag = |value: Option<bool>, old: Option<bool>| value.or(old).unwrap_or(false);
        Ok(ProviderSettings {
            name,
            issuer,
            client_id,
            client_secret,
            scopes,
            algorithms,
            create_accounts: flag(
                input.create_accounts,
                current.as_ref().map(|c| c.create_accounts),
            ),
            link_by_verified_email: flag(
                input.link_by_verified_email,
                current.as_ref().map(|c| c.link_by_verified_email),
            ),
        })
    }
}

/// The scopes and signing algorithms a change makes, checked (defaults for a new provider:
/// `openid email profile`, RS256 and ES256).
fn scopes_and_algorithms(
    scopes: Option<Vec<String>>,
    algorithms: Option<Vec<String>>,
    current: Option<&ProviderSettings>,
) -> Result<(Vec<String>, Vec<String>), AppError> {
    let invalid = |detail: &str| AppError::with(ProblemCode::InvalidIdentityProvider, detail);
    let scopes = scopes
        .or_else(|| current.map(|c| c.scopes.clone()))
        .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
    if scopes.len() > SCOPES_MAX
        || scopes
            .iter()
            .any(|s| s.is_empty() || s.len() > 100 || s.contains(' '))
    {
        return Err(invalid(
            "at most 20 scopes, each 1 to 100 characters without spaces",
        ));
    }
    let algorithms = algorithms
        .or_else(|| current.map(|c| c.algorithms.clone()))
        .unwrap_or_else(|| vec!["RS256".into(), "ES256".into()]);
    if algorithms.is_empty() {
        return Err(invalid("at least one signing algorithm"));
    }
    oidc::signing_algorithms(&algorithms).map_err(|e| invalid(&e.to_string()))?;
    Ok((scopes, algorithms))
}
