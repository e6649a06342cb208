//! Every use case of one Warden process, built from the adapters it runs on.

use std::sync::Arc;

use sqlx::PgPool;
use warden_aggregates::account::AccountServices;
use warden_projections::Projections;

use super::accounts::Accounts;
use super::admin::Admin;
use super::api_tokens::ApiTokens;
use super::archival::Archival;
use super::audit::Audit;
use super::authentication::Authentication;
use super::command::{CommandDeps, Commands};
use super::credentials::activity::Activity;
use super::credentials::cache::CredentialCache;
use super::credentials::Credentials;
use super::directory::Directory;
use super::history::History;
use super::identity_providers::IdentityProviders;
use super::introspection::Introspection;
use super::mfa::Mfa;
use super::passkeys::Passkeys;
use super::pin::Pin;
use super::sessions::Sessions;
use super::sso::SingleSignOn;
use super::stream::Stream;
use super::workspaces::Workspaces;
use crate::adapters::client_throttle::ClientThrottle;
use crate::adapters::keys::KeyRing;
use crate::adapters::oidc::Oidc;
use crate::adapters::password::Argon2Passwords;
use crate::adapters::store::EventStore;
use crate::adapters::totp::RfcTotp;
use crate::metrics::Metrics;

/// What the use cases are built from.
pub struct Deps {
    pub pool: PgPool,
    pub keys: KeyRing,
    pub passwords: Argon2Passwords,
    pub services: Arc<AccountServices>,
    pub projections: Arc<Projections>,
    pub metrics: Metrics,
    pub totp: Arc<RfcTotp>,
    pub totp_issuer: String,
    pub credential_cache: Arc<CredentialCache>,
    pub activity: Activity,
    /// Whether revoking commands wait for every process (always, except to demonstrate in a
    /// debug build what goes wrong without it).
    pub revocation_barrier: bool,
    pub introspections_per_second: u32,
    pub throttle: ClientThrottle,
    pub sso: SsoDeps,
    /// The WebAuthn relying party passkeys are registered with; none when passkeys are off.
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
}

/// What single sign-on is built from.
pub struct SsoDeps {
    pub oidc: Oidc,
    /// Where providers send the browser back to (`…/v1/sso/callback`).
    pub redirect_uri: String,
    /// Origins a sign-in may return to.
    pub return_origins: Vec<String>,
}

#[derive(Clone)]
pub struct App {
    pub commands: Commands,
    pub accounts: Accounts,
    pub sessions: Sessions,
    pub authentication: Authentication,
    pub mfa: Mfa,
    pub passkeys: Passkeys,
    pub pin: Pin,
    pub api_tokens: ApiTokens,
    pub workspaces: Workspaces,
    pub archival: Archival,
    pub admin: Admin,
    pub audit: Audit,
    pub history: History,
    pub stream: Stream,
    pub introspection: Introspection,
    pub credentials: Credentials,
    pub identity_providers: IdentityProviders,
    pub sso: SingleSignOn,
}

impl App {
    pub fn new(deps: Deps) -> Self {
        let pool = deps.pool;
        let store = EventStore::new(pool.clone());
        let commands = Commands::new(
            store.clone(),
            deps.services.clone(),
            CommandDeps {
                projections: deps.projections,
                metrics: deps.metrics,
                keys: deps.keys.clone(),
                revocation_barrier: deps.revocation_barrier,
                credential_cache: deps.credential_cache.clone(),
            },
        );
        let directory = Directory::new(pool.clone(), deps.keys.clone(), store);
        let (identity_providers, sso) =
            single_sign_on(&commands, &directory, deps.keys, &pool, deps.sso);
        let accounts = Accounts::new(
            commands.clone(),
            directory.clone(),
            deps.throttle.clone(),
            deps.passwords.clone(),
            pool.clone(),
        );
        let factors = (deps.totp, deps.totp_issuer, deps.webauthn);
        let (mfa, passkeys) = second_factors(&commands, &directory, &pool, &deps.throttle, factors);
        let workspaces = Workspaces::new(commands.clone(), directory.clone(), pool.clone());
        let credentials = Credentials::new(
            deps.credential_cache,
            commands.clone(),
            directory.clone(),
            deps.activity.clone(),
            pool.clone(),
        );
        Self {
            sessions: Sessions::new(
                commands.clone(),
                directory.clone(),
                deps.throttle.clone(),
                deps.passwords.clone(),
                deps.activity.clone(),
                pool.clone(),
            ),
            authentication: Authentication::new(
                commands.clone(),
                credentials.clone(),
                directory.clone(),
                pool.clone(),
                deps.introspections_per_second,
            ),
            passkeys,
            mfa,
            pin: Pin::new(commands.clone(), deps.passwords),
            api_tokens: ApiTokens::new(commands.clone(), pool.clone()),
            archival: Archival::new(commands.clone(), workspaces.clone(), pool.clone()),
            admin: Admin::new(
                commands.clone(),
                directory.clone(),
                accounts.clone(),
                pool.clone(),
            ),
            audit: Audit::new(commands.clone(), directory.clone(), pool.clone()),
            history: History::new(commands.clone(), directory.clone(), pool.clone()),
            stream: Stream::new(commands.clone(), directory, pool.clone()),
            introspection: Introspection::new(credentials.clone(), deps.services.clock.clone()),
            credentials,
            identity_providers,
            sso,
            workspaces,
            accounts,
            commands,
        }
    }
}

/// TOTP, recovery and emailed codes, and passkeys, which finish the second step through them.
fn second_factors(
    commands: &Commands,
    directory: &Directory,
    pool: &PgPool,
    throttle: &ClientThrottle,
    (totp, issuer, webauthn): (Arc<RfcTotp>, String, Option<Arc<webauthn_rs::Webauthn>>),
) -> (Mfa, Passkeys) {
    let mfa = Mfa::new(
        commands.clone(),
        directory.clone(),
        throttle.clone(),
        totp,
        issuer,
        pool.clone(),
    );
    let passkeys = Passkeys::new(
        commands.clone(),
        directory.clone(),
        throttle.clone(),
        webauthn,
        mfa.clone(),
        pool.clone(),
    );
    (mfa, passkeys)
}

fn single_sign_on(
    commands: &Commands,
    directory: &Directory,
    keys: KeyRing,
    pool: &PgPool,
    sso: SsoDeps,
) -> (IdentityProviders, SingleSignOn) {
    let providers = IdentityProviders::new(commands.clone(), keys, sso.oidc.clone(), pool.clone());
    let single_sign_on = SingleSignOn::new(
        commands.clone(),
        directory.clone(),
        providers.clone(),
        pool.clone(),
        sso,
    );
    (providers, single_sign_on)
}
