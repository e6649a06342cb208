//! OpenID Connect relying party: discovery, the authorization request (state, nonce, PKCE S256),
//! the code exchange and the ID token's verification, through the `openidconnect` crate. The
//! HTTP client follows no redirects (a provider's answer is never an invitation to fetch
//! elsewhere). Provider metadata and keys are kept for an hour; a signature that does not verify
//! against them has them fetched again once, because providers rotate their keys.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::reqwest;
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};

const METADATA_TTL: Duration = Duration::from_secs(3600);

/// The signing algorithms a provider may be configured to use. Symmetric ones (keyed with the
/// client secret) and `none` are not among them.
pub const SIGNING_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// One provider's client settings, opened for one request.
pub struct ClientSettings<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub client_secret: SecretString,
    pub redirect_uri: &'a str,
    pub algorithms: &'a [String],
}

/// The secrets of one sign-in attempt, derived again from its state.
pub struct AttemptSecrets {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// What a verified ID token says.
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    pub subject: String,
    pub email: Option<String>,
    /// `email_verified` as `true` or the string `"true"`.
    pub email_verified: bool,
    pub name: Option<String>,
    pub sid: Option<String>,
    pub amr: Vec<String>,
    pub acr: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the provider cannot be reached: {0}")]
    Unavailable(String),
    #[error("the provider's settings are not usable: {0}")]
    Misconfigured(String),
    #[error("the code could not be exchanged: {0}")]
    ExchangeFailed(String),
    #[error("the ID token is not valid: {0}")]
    TokenInvalid(String),
    #[error("the ID token was issued for another sign-in")]
    NonceMismatch,
}

#[derive(Clone)]
pub struct Oidc {
    http: reqwest::Client,
    metadata: moka::sync::Cache<String, Arc<CoreProviderMetadata>>,
}

impl Oidc {
    pub fn new() -> Result<Self, OidcError> {
        let http = reqwest::ClientBuilder::new()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OidcError::Misconfigured(e.to_string()))?;
        let metadata = moka::sync::Cache::builder()
            .max_capacity(1_000)
            .time_to_live(METADATA_TTL)
            .build();
        Ok(Self { http, metadata })
    }

    /// The provider's discovery document and keys, fetched once an hour (or now, `fresh`).
    async fn metadata(
        &self,
        issuer: &str,
        fresh: bool,
    ) -> Result<Arc<CoreProviderMetadata>, OidcError> {
        if !fresh {
            if let Some(known) = self.metadata.get(issuer) {
                return Ok(known);
            }
        }
        let url = IssuerUrl::new(issuer.to_string())
            .map_err(|e| OidcError::Misconfigured(format!("issuer: {e}")))?;
        let discovered = CoreProviderMetadata::discover_async(url, &self.http)
            .await
            .map_err(|e| OidcError::Unavailable(describe(&e)))?;
        let discovered = Arc::new(discovered);
        self.metadata.insert(issuer.to_string(), discovered.clone());
        Ok(discovered)
    }

    /// Checks that the issuer answers discovery (for a provider being configured).
    pub async fn discover(&self, issuer: &str) -> Result<(), OidcError> {
        self.metadata(issuer, true).await.map(|_| ())
    }

    /// Whether the provider says it sends `iss` in authorization responses (RFC 9207).
    pub async fn sends_iss(&self, issuer: &str) -> Result<bool, OidcError> {
        let metadata = self.metadata(issuer, false).await?;
        let value = serde_json::to_value(metadata.as_ref()).unwrap_or_default();
        Ok(value
            .get("authorization_response_iss_parameter_supported")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false))
    }

    fn client(
        metadata: &CoreProviderMetadata,
        settings: &ClientSettings<'_>,
    ) -> Result<ConfiguredClient, OidcError> {
        let redirect = RedirectUrl::new(settings.redirect_uri.to_string())
            .map_err(|e| OidcError::Misconfigured(format!("redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(settings.client_id.to_string()),
            Some(ClientSecret::new(
                settings.client_secret.expose_secret().to_string(),
            )),
        )
        .set_redirect_uri(redirect))
    }

    /// Where to send the browser to sign in.
    pub async fn authorization_url(
        &self,
        settings: &ClientSettings<'_>,
        scopes: &[String],
        secrets: &AttemptSecrets,
    ) -> Result<String, OidcError> {
        let metadata = self.metadata(settings.issuer, false).await?;
        let client = Self::client(&metadata, settings)?;
        let verifier = PkceCodeVerifier::new(secrets.pkce_verifier.clone());
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
        let state = secrets.state.clone();
        let nonce = secrets.nonce.clone();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            move || Nonce::new(nonce),
        );
        for scope in scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, _) = request.set_pkce_challenge(challenge).url();
        Ok(url.to_string())
    }

    /// Exchanges `code` and verifies the ID token: signature with an allowed algorithm, issuer
    /// exactly, audience, expiry at `now`, and the attempt's nonce.
    pub async fn sign_in(
        &self,
        settings: &ClientSettings<'_>,
        code: &str,
        secrets: &AttemptSecrets,
        now: DateTime<Utc>,
    ) -> Result<VerifiedIdentity, OidcError> {
        let metadata = self.metadata(settings.issuer, false).await?;
        let client = Self::client(&metadata, settings)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Misconfigured(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(secrets.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(answer) => {
                    OidcError::ExchangeFailed(answer.error().to_string())
                }
                RequestTokenError::Request(e) => OidcError::Unavailable(describe(&e)),
                other => OidcError::ExchangeFailed(describe(&other)),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::TokenInvalid("no ID token in the answer".into()))?;
        let algorithms = signing_algorithms(settings.algorithms)?;
        let verify =
            |metadata: &CoreProviderMetadata| -> Result<VerifiedIdentity, ClaimsVerificationError> {
                let client = Self::client(metadata, settings)
                    .map_err(|e| ClaimsVerificationError::Other(e.to_string()))?;
                let verifier = client
                    .id_token_verifier()
                    .set_allowed_algs(algorithms.clone())
                    .set_time_fn(move || now);
                let claims = id_token.claims(&verifier, &Nonce::new(secrets.nonce.clone()))?;
                Ok(VerifiedIdentity {
                    subject: claims.subject().as_str().to_string(),
                    email: claims.email().map(|e| e.as_str().to_string()),
                    email_verified: claims.email_verified().unwrap_or(false),
                    name: claims
                        .name()
                        .and_then(|n| n.get(None))
                        .map(|n| n.as_str().to_string()),
                    sid: None,
                    amr: claims
                        .auth_method_refs()
                        .map(|amr| amr.iter().map(|m| m.as_str().to_string()).collect())
                        .unwrap_or_default(),
                    acr: claims.auth_context_ref().map(|a| a.as_str().to_string()),
                })
            };
        let verified = match verify(&metadata) {
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                // The provider may have rotated its keys since they were fetched.
                let fresh = self.metadata(settings.issuer, true).await?;
                verify(&fresh)
            }
            other => other,
        };
        let mut identity = verified.map_err(|e| match e {
            ClaimsVerificationError::InvalidNonce(_) => OidcError::NonceMismatch,
            other => OidcError::TokenInvalid(other.to_string()),
        })?;
        identity.sid = session_id_claim(id_token);
        if identity.email.is_none() {
            self.add_user_info(&client, response.access_token(), &mut identity)
                .await?;
        }
        Ok(identity)
    }

    /// Providers that keep the ID token minimal (as the specification has it for the code
    /// flow) give the address at their UserInfo endpoint; its subject must be the ID token's.
    async fn add_user_info(
        &self,
        client: &ConfiguredClient,
        access_token: &openidconnect::AccessToken,
        identity: &mut VerifiedIdentity,
    ) -> Result<(), OidcError> {
        let subject = openidconnect::SubjectIdentifier::new(identity.subject.clone());
        let Ok(request) = client.user_info(access_token.clone(), Some(subject)) else {
            return Ok(());
        };
        let claims: openidconnect::core::CoreUserInfoClaims = request
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::TokenInvalid(format!("user info: {}", describe(&e))))?;
        identity.email = claims.email().map(|e| e.as_str().to_string());
        identity.email_verified = claims.email_verified().unwrap_or(false);
        if identity.name.is_none() {
            identity.name = claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string());
        }
        Ok(())
    }
}

type ConfiguredClient = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// What a verified back-channel logout token names: the provider's subject, its session, or
/// both.
#[derive(Debug, Clone)]
pub struct LogoutRequest {
    pub subject: Option<String>,
    pub sid: Option<String>,
}

const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How far from Warden's clock a logout token's `iat` may be.
const LOGOUT_TOKEN_SKEW_SECS: i64 = 300;

#[derive(serde::Deserialize)]
struct LogoutClaims {
    iat: i64,
    exp: Option<i64>,
    events: serde_json::Map<String, serde_json::Value>,
    sub: Option<String>,
    sid: Option<String>,
    nonce: Option<serde_json::Value>,
}

impl Oidc {
    /// Verifies an OpenID Connect Back-Channel Logout 1.0 logout token: signed with one of the
    /// provider's keys (fetched again once for an unknown key) and an allowed algorithm, issuer,
    /// audience, times against `now`, the logout event, no nonce, and a subject or session.
    pub async fn verify_logout_token(
        &self,
        settings: &ClientSettings<'_>,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<LogoutRequest, OidcError> {
        let invalid = |detail: &str| OidcError::TokenInvalid(detail.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e.to_string()))?;
        let algorithm = format!("{:?}", header.alg);
        if !settings.algorithms.contains(&algorithm) {
            return Err(invalid("the token's algorithm is not allowed"));
        }
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[settings.issuer]);
        validation.set_audience(&[settings.client_id]);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "aud", "iat"]);
        let mut fresh = false;
        let claims = loop {
            let key = self
                .logout_key(settings.issuer, header.kid.as_deref(), fresh)
                .await?;
            match jsonwebtoken::decode::<LogoutClaims>(token, &key, &validation) {
                Ok(data) => break data.claims,
                Err(e) if fresh => return Err(invalid(&e.to_string())),
                Err(e) => match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => fresh = true,
                    _ => return Err(invalid(&e.to_string())),
                },
            }
        };
        let at = now.timestamp();
        if (claims.iat - at).abs() > LOGOUT_TOKEN_SKEW_SECS
            || claims.exp.is_some_and(|exp| exp <= at)
        {
            return Err(invalid("the token is expired or not yet valid"));
        }
        if !claims.events.contains_key(BACKCHANNEL_LOGOUT_EVENT) || claims.nonce.is_some() {
            return Err(invalid("not a logout token"));
        }
        if claims.sub.is_none() && claims.sid.is_none() {
            return Err(invalid("the token names neither a subject nor a session"));
        }
        Ok(LogoutRequest {
            subject: claims.sub,
            sid: claims.sid,
        })
    }

    /// The provider's key `kid` (the only one, without a `kid`), from its key set.
    async fn logout_key(
        &self,
        issuer: &str,
        kid: Option<&str>,
        fresh: bool,
    ) -> Result<jsonwebtoken::DecodingKey, OidcError> {
        let mut fresh = fresh;
        loop {
            let metadata = self.metadata(issuer, fresh).await?;
            let keys = serde_json::to_value(metadata.jwks())
                .ok()
                .and_then(|v| serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(v).ok())
                .ok_or_else(|| {
                    OidcError::Unavailable("the provider's keys are unreadable".into())
                })?;
            let found = match kid {
                Some(kid) => keys.find(kid),
                None if keys.keys.len() == 1 => keys.keys.first(),
                None => None,
            };
            match found {
                Some(jwk) => {
                    return jsonwebtoken::DecodingKey::from_jwk(jwk)
                        .map_err(|e| OidcError::TokenInvalid(e.to_string()))
                }
                None if !fresh => fresh = true,
                None => {
                    return Err(OidcError::TokenInvalid(
                        "no key of the provider signed it".into(),
                    ))
                }
            }
        }
    }
}

/// The `sid` claim of an ID token whose signature was verified already.
fn session_id_claim(id_token: &impl serde::Serialize) -> Option<String> {
    let compact = serde_json::to_value(id_token).ok()?;
    let payload = compact.as_str()?.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("sid")?.as_str().map(str::to_string)
}

/// The configured algorithm names as JOSE algorithms, refusing any outside the allowed list.
pub fn signing_algorithms(names: &[String]) -> Result<Vec<CoreJwsSigningAlgorithm>, OidcError> {
    names
        .iter()
        .map(|name| {
            if !SIGNING_ALGORITHMS.contains(&name.as_str()) {
                return Err(OidcError::Misconfigured(format!(
                    "algorithm {name} is not allowed"
                )));
            }
            serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| OidcError::Misconfigured(format!("algorithm {name} is unknown")))
        })
        .collect()
}

/// An error and its causes, on one line (the provider's answers name no secret of ours).
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
