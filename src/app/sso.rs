//! Signing in through an OpenID Connect provider: the start (state, nonce, PKCE, a browser
//! binding cookie), the callback (every check of the answer, then the account: found by its
//! linked identity, linked by a verified address where the provider allows it, or created), and
//! the exchange of the one-time login code for a session. The customers' rule: the provider is
//! trusted, so no second factor is asked, whatever a workspace requires (docs/adr/0017).
//!
//! Nothing secret is stored on the way: the attempt keeps hashes of its state and cookie, and
//! the nonce, the PKCE verifier and the session token are derived again from values the browser
//! brings back, under a key derived from the master key.

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::account::Reauthentication;
use warden_aggregates::account::{
    AccountCommand, AccountError, AuthMethod, IdentityCommand, LinkVia, NewIdentity, NewSession,
    ProviderRegistration, ProviderSignIn,
};
use warden_aggregates::identity_provider::{
    IdentityProvider, IdentityProviderCommand, ProviderOwner, ProviderSettings, SignInRefusal,
};
use warden_aggregates::shared::{AccountId, Email, ProviderId, SessionId, TokenHash};

use super::command::{CommandError, Commands, Settle};
use super::context::{metadata, Authenticated, RequestContext};
use super::directory::Directory;
use super::error::AppError;
use super::identity_providers::{secret_purpose, IdentityProviders};
use super::problem::ProblemCode;
use super::sessions::LoggedIn;
use super::wiring::SsoDeps;
use crate::adapters::oidc::{
    AttemptSecrets, ClientSettings, LogoutRequest, Oidc, OidcError, VerifiedIdentity,
};
use crate::adapters::tokens::{self, SESSION_PREFIX};

const ATTEMPT_TTL_MINUTES: i64 = 10;
const LOGIN_CODE_TTL_SECONDS: i64 = 60;
/// The cookie that binds an attempt to the browser that started it.
pub const BROWSER_COOKIE: &str = "__Host-warden-sso";

/// Where the browser goes to sign in, and the cookie it must bring back.
pub struct Started {
    pub authorization_url: String,
    pub browser_secret: SecretString,
}

/// What the provider's redirect brought back.
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}

/// An attempt taken for its callback.
struct Attempt {
    provider_id: ProviderId,
    return_to: String,
    state: String,
    /// A link from the owner's settings: the account and the link code's hash.
    link: Option<(AccountId, TokenHash)>,
}

/// A link from settings, as the start URL carries it: `ACCOUNT.CODE`.
pub struct LinkCode<'a>(pub &'a str);

impl LinkCode<'_> {
    fn parse(&self) -> Option<(AccountId, TokenHash)> {
        let (account, code) = self.0.split_once('.')?;
        let account = Uuid::parse_str(account).ok()?;
        (code.len() <= 100).then(|| (AccountId(account), tokens::hash(code)))
    }
}

/// A linked identity, as its owner's settings show it.
pub struct IdentityEntry {
    pub provider_id: ProviderId,
    pub provider_name: Option<String>,
    pub issuer: String,
    pub linked_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct SingleSignOn {
    commands: Commands,
    directory: Directory,
    providers: IdentityProviders,
    oidc: Oidc,
    pool: PgPool,
    redirect_uri: String,
    return_origins: Vec<String>,
}

impl SingleSignOn {
    pub fn new(
        commands: Commands,
        directory: Directory,
        providers: IdentityProviders,
        pool: PgPool,
        deps: SsoDeps,
    ) -> Self {
        Self {
            commands,
            directory,
            providers,
            oidc: deps.oidc,
            pool,
            redirect_uri: deps.redirect_uri,
            return_origins: deps.return_origins,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.commands.clock().now()
    }

    /// Starts a sign-in at `provider_id` that returns to `return_to`.
    pub async fn start(
        &self,
        provider_id: ProviderId,
        return_to: &str,
        link: Option<LinkCode<'_>>,
    ) -> Result<Started, AppError> {
        if !return_to_allowed(return_to, &self.return_origins) {
            return Err(AppError::new(ProblemCode::ReturnToNotAllowed));
        }
        let link = match link {
            Some(code) => Some(
                code.parse()
                    .ok_or_else(|| AppError::new(ProblemCode::SsoAttemptInvalid))?,
            ),
            None => None,
        };
        let (_, settings) = self.providers.live(provider_id).await?;
        let (state, state_hash) = tokens::mint("");
        let (browser, browser_hash) = tokens::mint("");
        let now = self.now();
        sqlx::query("DELETE FROM sso_attempts WHERE expires_at < $1")
            .bind(now - Duration::days(1))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sso_attempts
                 (state_hash, provider_id, browser_hash, return_to, expires_at, link_account_id,
                  link_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&state_hash.0)
        .bind(provider_id.0)
        .bind(&browser_hash.0)
        .bind(return_to)
        .bind(now + Duration::minutes(ATTEMPT_TTL_MINUTES))
        .bind(link.as_ref().map(|(account, _)| account.0))
        .bind(link.as_ref().map(|(_, hash)| hash.0.clone()))
        .execute(&self.pool)
        .await?;
        let secrets = self.secrets(secrecy::ExposeSecret::expose_secret(&state));
        let client = self.client(provider_id, &settings)?;
        let authorization_url = self
            .oidc
            .authorization_url(&client, &settings.scopes, &secrets)
            .await
            .map_err(unavailable)?;
        Ok(Started {
            authorization_url,
            browser_secret: browser,
        })
    }

    /// Finishes a sign-in: the URL to send the browser to, `return_to` with a login code.
    pub async fn callback(
        &self,
        answer: Callback,
        browser: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<String, AppError> {
        let attempt = self
            .take_attempt(answer.state.as_deref(), browser, ctx)
            .await?;
        let provider_id = attempt.provider_id;
        let (owner, settings) = self.providers.live(provider_id).await?;
        let identity = self.verify(&attempt, &settings, answer, ctx).await?;
        if let Some((account_id, link_hash)) = attempt.link.clone() {
            self.link(
                account_id,
                link_hash,
                provider_id,
                &settings,
                &identity,
                ctx,
            )
            .await?;
            return Ok(with_query(
                &attempt.return_to,
                "linked",
                &provider_id.to_string(),
            ));
        }
        let (account_id, link) = match self
            .account_for(provider_id, owner, &settings, &identity)
            .await
        {
            Ok(found) => found,
            Err((reason, error)) => {
                self.refuse(provider_id, reason, ctx).await;
                return Err(error);
            }
        };
        let code = self
            .sign_in(account_id, provider_id, &settings, &identity, link, ctx)
            .await?;
        Ok(with_query(&attempt.return_to, "login_code", &code))
    }

    /// The session a login code stands for (once, within 60 seconds).
    pub async fn exchange(&self, login_code: &str) -> Result<LoggedIn, AppError> {
        let invalid = || AppError::new(ProblemCode::LoginCodeInvalid);
        let row: Option<(Uuid, Uuid)> = sqlx::query_as(
            "UPDATE sso_login_codes SET used_at = $2
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING account_id, session_id",
        )
        .bind(tokens::hash(login_code).0)
        .bind(self.now())
        .fetch_optional(&self.pool)
        .await?;
        let (account_id, session_id) = row.ok_or_else(invalid)?;
        let account = self.commands.load_account(AccountId(account_id)).await?;
        let session_id = SessionId(session_id);
        let expires_at = account
            .sessions()
            .find(|(id, _)| **id == session_id)
            .map(|(_, s)| s.expires_at)
            .ok_or_else(invalid)?;
        Ok(LoggedIn {
            token: self.session_token(login_code),
            session_id,
            expires_at,
        })
    }

    /// The owner, re-authenticated, starts linking `provider_id`: the Warden URL their browser
    /// opens to sign in at the provider (10 minutes, once).
    pub async fn start_link(
        &self,
        who: &Authenticated,
        provider_id: ProviderId,
        return_to: &str,
        proof: Reauthentication,
        ctx: &RequestContext,
    ) -> Result<String, AppError> {
        who.require_session()?;
        if !return_to_allowed(return_to, &self.return_origins) {
            return Err(AppError::new(ProblemCode::ReturnToNotAllowed));
        }
        let (owner, _) = self.providers.live(provider_id).await?;
        if let ProviderOwner::Workspace(workspace) = owner {
            let members = self.commands.load_workspace(workspace).await?;
            if members.role_of(who.account_id).is_none() {
                return Err(AppError::new(ProblemCode::IdentityProviderNotFound));
            }
        }
        let (code, link_hash) = tokens::mint("");
        let expires_at = self.now() + Duration::minutes(ATTEMPT_TTL_MINUTES);
        let command = || IdentityCommand::StartLink {
            provider_id,
            link_hash: link_hash.clone(),
            expires_at,
            proof: proof.clone(),
        };
        let refused = ProblemCode::ReauthenticationFailed;
        self.commands
            .own(who, ctx, command, Settle::Views, refused)
            .await?;
        let base = self.redirect_uri.trim_end_matches("/callback");
        Ok(format!(
            "{base}/{provider_id}/start?return_to={}&link={}.{}",
            urlencoding::encode(return_to),
            who.account_id,
            secrecy::ExposeSecret::expose_secret(&code),
        ))
    }

    /// Links the identity a link attempt came back with.
    async fn link(
        &self,
        account_id: AccountId,
        link_hash: TokenHash,
        provider_id: ProviderId,
        settings: &ProviderSettings,
        identity: &VerifiedIdentity,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let key = self
            .directory
            .key(account_id)
            .await?
            .ok_or_else(|| AppError::new(ProblemCode::AccountErased))?;
        let subject = &identity.subject;
        if !self
            .directory
            .claim_identity(provider_id, subject, account_id)
            .await?
        {
            return Err(AppError::new(ProblemCode::IdentityTaken));
        }
        let identity = NewIdentity {
            provider_id,
            issuer: settings.issuer.clone(),
            subject: key.seal(subject),
            via: LinkVia::Settings,
        };
        let metadata = metadata(ctx, Some(&key), Some(account_id));
        let command = || {
            AccountCommand::Identity(IdentityCommand::Link {
                identity: identity.clone(),
                link_hash: link_hash.clone(),
            })
        };
        let linked = self
            .commands
            .account(account_id, command, &metadata, Settle::Views)
            .await;
        if let Err(error) = linked {
            let _ = self
                .directory
                .release_identity(provider_id, subject, account_id)
                .await;
            return Err(error.into());
        }
        Ok(())
    }

    /// The providers linked to the caller's account.
    pub async fn identities(&self, who: &Authenticated) -> Result<Vec<IdentityEntry>, AppError> {
        who.require_read_of_own_account()?;
        let account = self.commands.load_account(who.account_id).await?;
        let mut entries = Vec::new();
        for (provider_id, linked) in account.identities() {
            let live = self.providers.live(*provider_id).await.ok();
            entries.push(IdentityEntry {
                provider_id: *provider_id,
                provider_name: live.map(|(_, settings)| settings.name),
                issuer: linked.issuer.clone(),
                linked_at: linked.linked_at,
            });
        }
        Ok(entries)
    }

    /// Unlinks a provider from the caller's account (refused if it is the last way to sign
    /// in); the sessions signed in through it end, on every process, before this answers.
    pub async fn unlink(
        &self,
        who: &Authenticated,
        provider_id: ProviderId,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session()?;
        let command = || IdentityCommand::Unlink { provider_id };
        let refused = ProblemCode::ReauthenticationFailed;
        self.commands
            .own(who, ctx, command, Settle::Revocation, refused)
            .await?;
        self.directory
            .release_identities(provider_id, who.account_id)
            .await
    }

    /// The provider ended a session of its own (Back-Channel Logout 1.0): every Warden session it
    /// started for that subject, or in that provider session, ends on every process before
    /// this answers.
    pub async fn backchannel_logout(
        &self,
        provider_id: ProviderId,
        logout_token: &str,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let (_, settings) = self.providers.live(provider_id).await?;
        let client = self.client(provider_id, &settings)?;
        let request = match self
            .oidc
            .verify_logout_token(&client, logout_token, self.now())
            .await
        {
            Ok(request) => request,
            Err(OidcError::Unavailable(e)) => {
                tracing::warn!(%provider_id, error = %e, "identity provider unavailable");
                return Err(AppError::new(ProblemCode::SsoProviderUnavailable));
            }
            Err(error) => {
                self.refuse(provider_id, SignInRefusal::LogoutTokenInvalid, ctx)
                    .await;
                let detail = error.to_string();
                return Err(AppError::with(ProblemCode::LogoutTokenInvalid, detail));
            }
        };
        for account_id in self.accounts_of(provider_id, &request).await? {
            self.end_provider_sessions(account_id, provider_id, request.sid.clone(), ctx)
                .await?;
        }
        Ok(())
    }

    /// Ends `account_id`'s sessions from the provider (session `sid`), confirmed by every process.
    async fn end_provider_sessions(
        &self,
        account_id: AccountId,
        provider_id: ProviderId,
        sid: Option<String>,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let command = || {
            AccountCommand::Identity(IdentityCommand::EndProviderSessions {
                provider_id,
                sid: sid.clone(),
            })
        };
        let key = self.directory.key(account_id).await?;
        let mut metadata = metadata(ctx, key.as_ref(), None);
        metadata.insert("actor".into(), format!("identity_provider:{provider_id}"));
        match self
            .commands
            .account(account_id, command, &metadata, Settle::Revocation)
            .await
        {
            Ok(_) => Ok(()),
            // An erased account has no session left to end.
            Err(CommandError::Refused {
                refusal: AccountError::Erased | AccountError::NotRegistered,
                ..
            }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// The accounts a logout names: by subject, else by the provider session.
    async fn accounts_of(
        &self,
        provider_id: ProviderId,
        request: &LogoutRequest,
    ) -> Result<Vec<AccountId>, AppError> {
        if let Some(subject) = &request.subject {
            let found = self
                .directory
                .account_with_identity(provider_id, subject)
                .await?;
            return Ok(found.into_iter().collect());
        }
        let sid = request.sid.as_deref().unwrap_or_default();
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT account_id FROM sso_provider_sessions
             WHERE provider_id = $1 AND sid_hash = $2",
        )
        .bind(provider_id.0)
        .bind(tokens::hash(sid).0)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(AccountId).collect())
    }

    fn secrets(&self, state: &str) -> AttemptSecrets {
        let master = self.directory.keys().master();
        AttemptSecrets {
            state: state.to_string(),
            nonce: master.derived_secret("sso/nonce", state),
            pkce_verifier: master.derived_secret("sso/pkce-verifier", state),
        }
    }

    fn session_token(&self, login_code: &str) -> SecretString {
        let master = self.directory.keys().master();
        let body = master.derived_secret("sso/session-token", login_code);
        SecretString::from(format!("{SESSION_PREFIX}{body}"))
    }

    fn client<'a>(
        &'a self,
        id: ProviderId,
        settings: &'a ProviderSettings,
    ) -> Result<ClientSettings<'a>, AppError> {
        let secret = self
            .directory
            .keys()
            .master()
            .open_secret(&secret_purpose(id), &settings.client_secret)
            .map_err(AppError::internal)?;
        let secret = String::from_utf8(secret).map_err(AppError::internal)?;
        Ok(ClientSettings {
            issuer: &settings.issuer,
            client_id: &settings.client_id,
            client_secret: SecretString::from(secret),
            redirect_uri: &self.redirect_uri,
            algorithms: &settings.algorithms,
        })
    }

    /// Takes the attempt `state` names, once, from the browser that started it.
    async fn take_attempt(
        &self,
        state: Option<&str>,
        browser: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Attempt, AppError> {
        let invalid = || AppError::new(ProblemCode::SsoAttemptInvalid);
        let state = state.filter(|s| s.len() <= 200).ok_or_else(invalid)?;
        let state_hash = tokens::hash(state).0;
        let browser_hash = browser.map(|b| tokens::hash(b).0).unwrap_or_default();
        type Row = (Uuid, String, Option<Uuid>, Option<String>);
        let taken: Option<Row> = sqlx::query_as(
            "UPDATE sso_attempts SET used_at = $3
             WHERE state_hash = $1 AND browser_hash = $2 AND used_at IS NULL AND expires_at > $3
             RETURNING provider_id, return_to, link_account_id, link_hash",
        )
        .bind(&state_hash)
        .bind(&browser_hash)
        .bind(self.now())
        .fetch_optional(&self.pool)
        .await?;
        if let Some((provider_id, return_to, account, hash)) = taken {
            return Ok(Attempt {
                provider_id: ProviderId(provider_id),
                return_to,
                state: state.to_string(),
                link: account.zip(hash).map(|(a, h)| (AccountId(a), TokenHash(h))),
            });
        }
        // Refused: record it with its provider, if the state is one Warden handed out.
        let known: Option<(Uuid, bool)> = sqlx::query_as(
            "SELECT provider_id, browser_hash = $2 FROM sso_attempts WHERE state_hash = $1",
        )
        .bind(&state_hash)
        .bind(&browser_hash)
        .fetch_optional(&self.pool)
        .await?;
        match known {
            Some((provider_id, same_browser)) => {
                let reason = if same_browser {
                    SignInRefusal::AttemptUsed
                } else {
                    SignInRefusal::BrowserMismatch
                };
                self.refuse(ProviderId(provider_id), reason, ctx).await;
            }
            None => {
                tracing::info!(request_id = %ctx.request_id, "sign-in callback with an unknown state")
            }
        }
        Err(invalid())
    }

    /// Checks the provider's answer and verifies its ID token.
    async fn verify(
        &self,
        attempt: &Attempt,
        settings: &ProviderSettings,
        answer: Callback,
        ctx: &RequestContext,
    ) -> Result<VerifiedIdentity, AppError> {
        let provider_id = attempt.provider_id;
        if let Some(reason) = self.issuer_problem(settings, answer.iss.as_deref()).await? {
            self.refuse(provider_id, reason, ctx).await;
            return Err(AppError::new(ProblemCode::SsoIssuerMismatch));
        }
        let code = match (answer.error, answer.code) {
            (None, Some(code)) if code.len() <= 2_000 => code,
            (error, _) => {
                self.refuse(provider_id, SignInRefusal::ProviderError, ctx)
                    .await;
                let detail = error.unwrap_or_else(|| "no code".into());
                let detail: String = detail.chars().take(100).collect();
                return Err(AppError::with(
                    ProblemCode::SsoProviderRefused,
                    format!("the provider answered: {detail}"),
                ));
            }
        };
        let client = self.client(provider_id, settings)?;
        let secrets = self.secrets(&attempt.state);
        match self
            .oidc
            .sign_in(&client, &code, &secrets, self.now())
            .await
        {
            Ok(identity) => Ok(identity),
            Err(OidcError::Unavailable(e) | OidcError::Misconfigured(e)) => {
                tracing::warn!(%provider_id, error = %e, "identity provider unavailable");
                Err(AppError::new(ProblemCode::SsoProviderUnavailable))
            }
            Err(error) => {
                let reason = match &error {
                    OidcError::ExchangeFailed(_) => SignInRefusal::ExchangeFailed,
                    OidcError::NonceMismatch => SignInRefusal::NonceMismatch,
                    _ => SignInRefusal::TokenInvalid,
                };
                tracing::info!(%provider_id, %error, "sign-in refused");
                self.refuse(provider_id, reason, ctx).await;
                Err(AppError::with(
                    ProblemCode::SsoTokenInvalid,
                    error.to_string(),
                ))
            }
        }
    }

    /// RFC 9207: an `iss` must be the provider's issuer, and one that says it sends `iss` must.
    async fn issuer_problem(
        &self,
        settings: &ProviderSettings,
        iss: Option<&str>,
    ) -> Result<Option<SignInRefusal>, AppError> {
        match iss {
            Some(iss) if iss == settings.issuer => Ok(None),
            Some(_) => Ok(Some(SignInRefusal::IssuerMismatch)),
            None => {
                let sends = self
                    .oidc
                    .sends_iss(&settings.issuer)
                    .await
                    .map_err(unavailable)?;
                Ok(sends.then_some(SignInRefusal::IssuerMismatch))
            }
        }
    }

    /// The account the identity signs in to, and the link this sign-in makes, if any.
    async fn account_for(
        &self,
        provider_id: ProviderId,
        owner: ProviderOwner,
        settings: &ProviderSettings,
        identity: &VerifiedIdentity,
    ) -> Result<(AccountId, Option<LinkVia>), (SignInRefusal, AppError)> {
        let failed = |e: AppError| (SignInRefusal::AccountUnavailable, e);
        if let Some(account_id) = self
            .directory
            .account_with_identity(provider_id, &identity.subject)
            .await
            .map_err(failed)?
        {
            if let ProviderOwner::Workspace(workspace) = owner {
                let members = self
                    .commands
                    .load_workspace(workspace)
                    .await
                    .map_err(failed)?;
                if members.role_of(account_id).is_none() {
                    return Err(refusal(
                        SignInRefusal::NotAMember,
                        ProblemCode::SsoNotAMember,
                    ));
                }
            }
            return Ok((account_id, None));
        }
        if let ProviderOwner::Workspace(_) = owner {
            return Err(refusal(
                SignInRefusal::NotAMember,
                ProblemCode::SsoNotAMember,
            ));
        }
        let email = identity.email.as_deref().and_then(|e| Email::parse(e).ok());
        let Some(email) = email else {
            return Err(refusal(
                SignInRefusal::AccountUnknown,
                ProblemCode::SsoAccountUnknown,
            ));
        };
        match self
            .directory
            .account_id_for(&email)
            .await
            .map_err(failed)?
        {
            Some(existing) if settings.link_by_verified_email && identity.email_verified => {
                Ok((existing, Some(LinkVia::VerifiedEmail)))
            }
            Some(_) => Err(refusal(
                SignInRefusal::LinkRequired,
                ProblemCode::SsoLinkRequired,
            )),
            // An account is only created for an address the provider vouches for, so nobody
            // can take an address through a provider that does not check it.
            None if settings.create_accounts && identity.email_verified => {
                let created = self
                    .create_account(provider_id, settings, identity, &email)
                    .await;
                created.map(|id| (id, None)).map_err(failed)
            }
            None => Err(refusal(
                SignInRefusal::AccountUnknown,
                ProblemCode::SsoAccountUnknown,
            )),
        }
    }

    /// A new account for a first sign-in, its address and identity claimed first.
    async fn create_account(
        &self,
        provider_id: ProviderId,
        settings: &ProviderSettings,
        identity: &VerifiedIdentity,
        email: &Email,
    ) -> Result<AccountId, AppError> {
        let account_id = AccountId(Uuid::now_v7());
        if !self.directory.claim(email, account_id).await? {
            return Err(AppError::new(ProblemCode::SsoLinkRequired));
        }
        let result = async {
            if !self
                .directory
                .claim_identity(provider_id, &identity.subject, account_id)
                .await?
            {
                return Err(AppError::new(ProblemCode::IdentityTaken));
            }
            let key = self.directory.keys().create(account_id.0).await?;
            let registration = ProviderRegistration {
                account_id,
                email: key.seal(email.as_str()),
                display_name: identity.name.as_deref().map(|n| key.seal(n)),
                identity: NewIdentity {
                    provider_id,
                    issuer: settings.issuer.clone(),
                    subject: key.seal(&identity.subject),
                    via: LinkVia::Created,
                },
            };
            let mut metadata = std::collections::HashMap::new();
            metadata.insert("actor".to_string(), account_id.to_string());
            metadata.insert("auth_method".to_string(), "sso".to_string());
            let command =
                || AccountCommand::Identity(IdentityCommand::Register(registration.clone()));
            self.commands
                .account(account_id, command, &metadata, Settle::Views)
                .await?;
            Ok(())
        }
        .await;
        if let Err(error) = result {
            self.directory.abandon(account_id).await;
            return Err(error);
        }
        Ok(account_id)
    }

    /// Starts the session and hands out its login code.
    async fn sign_in(
        &self,
        account_id: AccountId,
        provider_id: ProviderId,
        settings: &ProviderSettings,
        identity: &VerifiedIdentity,
        link: Option<LinkVia>,
        ctx: &RequestContext,
    ) -> Result<String, AppError> {
        let key = self
            .directory
            .key(account_id)
            .await?
            .ok_or_else(|| AppError::new(ProblemCode::AccountErased))?;
        if link.is_some()
            && !self
                .directory
                .claim_identity(provider_id, &identity.subject, account_id)
                .await?
        {
            return Err(AppError::new(ProblemCode::IdentityTaken));
        }
        let (code, _) = tokens::mint("");
        let code = secrecy::ExposeSecret::expose_secret(&code).to_string();
        let session = self.new_session(&code, provider_id, settings, identity);
        let session_id = session.session_id;
        let link = link.map(|via| NewIdentity {
            provider_id,
            issuer: settings.issuer.clone(),
            subject: key.seal(&identity.subject),
            via,
        });
        let mut metadata = metadata(ctx, Some(&key), Some(account_id));
        metadata.insert("auth_method".into(), "sso".into());
        let command = || {
            AccountCommand::Identity(IdentityCommand::LogIn {
                session: session.clone(),
                link: link.clone(),
            })
        };
        let committed = self
            .commands
            .account(account_id, command, &metadata, Settle::Views)
            .await;
        if let Err(error) = committed {
            if let CommandError::Refused {
                refusal: AccountError::Locked { .. } | AccountError::Erased,
                ..
            } = &error
            {
                self.refuse(provider_id, SignInRefusal::AccountUnavailable, ctx)
                    .await;
            }
            if link.is_some() {
                let subject = &identity.subject;
                let _ = self
                    .directory
                    .release_identity(provider_id, subject, account_id)
                    .await;
            }
            return Err(error.into());
        }
        self.record_sign_in(account_id, provider_id, identity, &code, session_id)
            .await?;
        Ok(code)
    }

    /// The session a provider sign-in starts; its token is derived from the login code.
    fn new_session(
        &self,
        code: &str,
        provider_id: ProviderId,
        settings: &ProviderSettings,
        identity: &VerifiedIdentity,
    ) -> NewSession {
        let token = self.session_token(code);
        NewSession {
            session_id: SessionId(Uuid::now_v7()),
            token_hash: tokens::hash(secrecy::ExposeSecret::expose_secret(&token)),
            device: None,
            // The provider tells its users of new sign-ins; Warden does for its own.
            device_hash: None,
            method: AuthMethod::Sso,
            sso: Some(Box::new(ProviderSignIn {
                provider_id,
                issuer: settings.issuer.clone(),
                sid: identity.sid.clone(),
                amr: identity.amr.clone(),
                acr: identity.acr.clone(),
            })),
        }
    }

    /// Keeps the login code's hash for its exchange, and the provider session for its
    /// back-channel logout.
    async fn record_sign_in(
        &self,
        account_id: AccountId,
        provider_id: ProviderId,
        identity: &VerifiedIdentity,
        code: &str,
        session_id: SessionId,
    ) -> Result<(), AppError> {
        if let Some(sid) = &identity.sid {
            sqlx::query(
                "INSERT INTO sso_provider_sessions (provider_id, sid_hash, account_id)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(provider_id.0)
            .bind(tokens::hash(sid).0)
            .bind(account_id.0)
            .execute(&self.pool)
            .await?;
        }
        sqlx::query("DELETE FROM sso_login_codes WHERE expires_at < $1")
            .bind(self.now() - Duration::days(1))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sso_login_codes (code_hash, account_id, session_id, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(tokens::hash(code).0)
        .bind(account_id.0)
        .bind(session_id.0)
        .bind(self.now() + Duration::seconds(LOGIN_CODE_TTL_SECONDS))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a refused sign-in on its provider; a failure to record is logged, the refusal
    /// stands either way.
    async fn refuse(&self, provider_id: ProviderId, reason: SignInRefusal, ctx: &RequestContext) {
        let metadata = metadata(ctx, None, None);
        let command = || IdentityProviderCommand::RecordRefusal { reason };
        if let Err(error) = self
            .commands
            .run::<IdentityProvider>(&provider_id.to_string(), command, &metadata, Settle::No)
            .await
        {
            let error = AppError::from(error);
            tracing::warn!(%error, request_id = %ctx.request_id, "sign-in refusal not recorded");
        }
    }
}

/// `url` with one more query parameter.
fn with_query(url: &str, name: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{name}={}", urlencoding::encode(value))
}

fn refusal(reason: SignInRefusal, code: ProblemCode) -> (SignInRefusal, AppError) {
    (reason, AppError::new(code))
}

fn unavailable(error: OidcError) -> AppError {
    tracing::warn!(%error, "identity provider unavailable");
    AppError::new(ProblemCode::SsoProviderUnavailable)
}

/// `return_to` is an absolute http(s) URL on one of the allowed origins.
pub fn return_to_allowed(return_to: &str, origins: &[String]) -> bool {
    let Ok(url) = reqwest::Url::parse(return_to) else {
        return false;
    };
    let origin = url.origin().ascii_serialization();
    matches!(url.scheme(), "http" | "https")
        && origins
            .iter()
            .any(|allowed| allowed.trim_end_matches('/') == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_origins_are_returned_to() {
        let origins = vec!["https://app.example.com".to_string()];
        assert!(return_to_allowed(
            "https://app.example.com/after?x=1",
            &origins
        ));
        assert!(!return_to_allowed(
            "https://app.example.com.evil.test/",
            &origins
        ));
        assert!(!return_to_allowed(
            "https://evil.test/?https://app.example.com",
            &origins
        ));
        assert!(!return_to_allowed("http://app.example.com/", &origins));
        assert!(!return_to_allowed("javascript:alert(1)", &origins));
        assert!(!return_to_allowed("/relative", &origins));
    }
}
