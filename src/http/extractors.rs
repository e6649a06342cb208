//! Request extractors: the authenticated caller, and the request's context for event metadata.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use secrecy::SecretString;
use uuid::Uuid;

use crate::app::AppError;
use crate::app::{Authenticated, RequestContext};
use crate::startup::AppState;

const MAX_USER_AGENT: usize = 512;

impl FromRequest for RequestContext {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(context_of(req)))
    }
}

pub fn context_of(req: &HttpRequest) -> RequestContext {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
    RequestContext {
        request_id,
        ip: client_address(req).map(|ip| ip.to_string()),
        user_agent,
    }
}

/// The client: the connection's peer, or — when the peer is a trusted proxy — the nearest
/// address in `X-Forwarded-For` that is not one of the trusted proxies.
fn client_address(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.trusted_proxies.as_slice())
        .unwrap_or_default();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|hop| !trusted.contains(hop))
            .unwrap_or(peer),
    )
}

/// The bearer token of the request, if it carries one.
pub fn bearer(req: &HttpRequest) -> Option<SecretString> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| SecretString::from(token.trim().to_string()))
}

/// What a credential extractor starts from: the state, the bearer token (or a 401) and the
/// request's context, taken before the request is left behind.
fn presented(
    req: &HttpRequest,
) -> Result<(web::Data<AppState>, SecretString, RequestContext), AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no state")))?;
    let token = bearer(req).ok_or_else(AppError::unauthenticated)?;
    Ok((state, token, context_of(req)))
}

impl FromRequest for Authenticated {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let presented = presented(req);
        let req = req.clone();
        Box::pin(async move {
            let (state, token, ctx) = presented?;
            let (who, rate) = state.app.authentication.authenticate(&token, &ctx).await?;
            if let Some(rate) = rate {
                // Read back by the middleware that writes the RateLimit-* headers.
                req.extensions_mut().insert(rate);
            }
            Ok(who)
        })
    }
}

/// A service calling `POST /v1/introspect`: an API token with the `introspect` scope, limited
/// by the introspection limit instead of the token's requests per minute.
pub struct Introspector(pub Authenticated);

impl FromRequest for Introspector {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let presented = presented(req);
        Box::pin(async move {
            let (state, token, ctx) = presented?;
            let who = state
                .app
                .authentication
                .authenticate_introspector(&token, &ctx)
                .await?;
            Ok(Self(who))
        })
    }
}
