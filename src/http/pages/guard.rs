//! What stands between a browser and the account pages: the `__Host-` cookies, the CSRF token
//! every form carries, the same-origin checks of every post, and the signed-in visitor.
//!
//! `/v1` never reads these cookies; only the handlers under `/account` do.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::PageError;
use crate::adapters::tokens;
use crate::app::sessions::LoggedIn;
use crate::app::{AppError, Authenticated, ProblemCode, RequestContext};
use crate::http::extractors::context_of;
use crate::startup::AppState;

/// The signed-in session of the pages: the session token itself.
pub const SESSION_COOKIE: &str = "__Host-warden-session";
/// The double-submit CSRF token; every form and every script call repeats it.
pub const CSRF_COOKIE: &str = "__Host-warden-csrf";
/// Between the password and the second step: the login challenge and the methods it offers.
pub const CHALLENGE_COOKIE: &str = "__Host-warden-challenge";
/// A provider sign-in started by these pages: the nonce its return address must repeat.
pub const SSO_COOKIE: &str = "__Host-warden-sso-return";
/// As long as a provider sign-in attempt lives.
pub const SSO_ATTEMPT_SECONDS: i64 = 10 * 60;
/// The header the page script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A form body larger than this is refused before it is read whole.
const MAX_FORM: usize = 16 * 1024;

/// A cookie only this origin's pages over HTTPS (or on localhost) see, and no script reads.
pub fn cookie(name: &'static str, value: String, max_age: Option<i64>) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, value)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish();
    if let Some(seconds) = max_age {
        cookie.set_max_age(CookieDuration::seconds(seconds));
    }
    cookie
}

/// The page session of a new session, living as long as the session may from `now` (the
/// application's clock).
pub fn session_cookie(logged_in: &LoggedIn, now: chrono::DateTime<chrono::Utc>) -> Cookie<'static> {
    let seconds = (logged_in.expires_at - now).num_seconds().max(60);
    let token = logged_in.token.expose_secret().to_string();
    cookie(SESSION_COOKIE, token, Some(seconds))
}

/// The cookie that tells the browser to forget `name`.
pub fn removal(name: &'static str) -> Cookie<'static> {
    let mut gone = cookie(name, String::new(), None);
    gone.make_removal();
    gone
}

/// The visitor's CSRF token: the one its browser holds, or a new one the answer sets.
pub struct Csrf {
    pub token: String,
    pub fresh: bool,
}

impl Csrf {
    fn of(req: &HttpRequest) -> Self {
        match req.cookie(CSRF_COOKIE) {
            Some(held) if held.value().len() >= 32 => Self {
                token: held.value().to_string(),
                fresh: false,
            },
            _ => Self {
                token: tokens::mint_nonce(),
                fresh: true,
            },
        }
    }

    /// The cookie to set with the answer, when the token is new.
    pub fn cookie(&self) -> Option<Cookie<'static>> {
        self.fresh
            .then(|| cookie(CSRF_COOKIE, self.token.clone(), None))
    }
}

impl FromRequest for Csrf {
    type Error = PageError;
    type Future = std::future::Ready<Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self::of(req)))
    }
}

/// A post is the pages' own when the browser says it came from this origin (`Sec-Fetch-Site`,
/// `Origin`) and it repeats the visitor's CSRF token. Either check alone would do in today's
/// browsers; both are kept so one browser's gap does not open the pages. The headers are
/// checked for every post before any handler runs (`sent_from_pages`), the token by the form
/// and script extractors.
pub fn sent_from_pages(req: &ServiceRequest) -> Result<(), AppError> {
    let refused = || AppError::new(ProblemCode::CrossSiteRequest);
    let header_of = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header_of("sec-fetch-site") {
        if site != "same-origin" {
            return Err(refused());
        }
    }
    if let Some(origin) = header_of(header::ORIGIN.as_str()) {
        let host = header_of(header::HOST.as_str()).ok_or_else(refused)?;
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        if origin_host != Some(host) {
            return Err(refused());
        }
    }
    Ok(())
}

/// The CSRF token a form or script call repeats is the one the visitor's browser holds.
fn token_matches(req: &HttpRequest, presented: &str) -> Result<(), AppError> {
    let refused = || AppError::new(ProblemCode::CrossSiteRequest);
    let held = req.cookie(CSRF_COOKIE).ok_or_else(refused)?;
    let matches: bool = held.value().as_bytes().ct_eq(presented.as_bytes()).into();
    if !matches || presented.is_empty() {
        return Err(refused());
    }
    Ok(())
}

/// A form posted by the pages: refused before it is parsed unless it is the pages' own.
pub struct Posted<T>(pub T);

#[derive(serde::Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

impl<T: DeserializeOwned + 'static> FromRequest for Posted<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let malformed = |e: &dyn std::fmt::Display| {
                PageError::from(AppError::with(ProblemCode::MalformedForm, e.to_string()))
            };
            let body = body.await.map_err(|e| malformed(&e))?;
            if body.len() > MAX_FORM {
                return Err(AppError::new(ProblemCode::PayloadTooLarge).into());
            }
            let token: Token = serde_urlencoded::from_bytes(&body).map_err(|e| malformed(&e))?;
            token_matches(&req, &token.csrf)?;
            let form = serde_urlencoded::from_bytes(&body).map_err(|e| malformed(&e))?;
            Ok(Self(form))
        })
    }
}

/// A signed-in visitor of the pages: the session in its cookie, checked exactly as a bearer
/// token is (same cache, same revocation barrier). API tokens are not sessions and are not
/// taken from a cookie.
pub struct SignedIn {
    pub who: Authenticated,
    pub ctx: RequestContext,
    pub csrf: Csrf,
}

impl FromRequest for SignedIn {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .cookie(SESSION_COOKIE)
            .map(|c| SecretString::from(c.value().to_string()));
        let ctx = context_of(req);
        let csrf = Csrf::of(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal(anyhow::anyhow!("no state")))?;
            let token = token
                .filter(|t| t.expose_secret().starts_with(tokens::SESSION_PREFIX))
                .ok_or(PageError::SignIn)?;
            let (who, _) = state
                .app
                .authentication
                .authenticate(&token, &ctx)
                .await
                .map_err(PageError::signed_out)?;
            who.session_id().ok_or(PageError::SignIn)?;
            Ok(Self { who, ctx, csrf })
        })
    }
}

/// A JSON call of the pages' script (WebAuthn ceremonies): refused unless it is the pages' own,
/// the CSRF token in `X-CSRF-Token`.
pub struct Scripted<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Scripted<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Json::<T>::from_request(&req, payload);
        Box::pin(async move {
            let presented = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            token_matches(&req, presented)?;
            let body = body.await.map_err(|e| {
                PageError::from(AppError::with(ProblemCode::MalformedJson, e.to_string()))
            })?;
            Ok(Self(body.into_inner()))
        })
    }
}
