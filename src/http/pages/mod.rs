//! The account pages under `/account`: server-rendered HTML (maud, compiled into the binary)
//! that calls the same use cases as the REST routes. Sign-in, password reset and the security
//! settings; the session lives in a `__Host-` cookie that only these handlers read.

mod assets;
mod audit;
mod chart;
mod devices;
mod factors;
mod guard;
mod layout;
mod passkeys;
mod reset;
mod security;
mod sign_in;
mod tokens;
mod workspaces;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use maud::Markup;

use crate::app::{AppError, ProblemCode};
use guard::Csrf;
pub use guard::{sent_from_pages, CSRF_COOKIE, SESSION_COOKIE};

/// What every account page answers with besides its body: nothing from elsewhere runs, nothing
/// frames it, nothing is cached, and no address (a reset link's token) leaks to another site in
/// `Referer` (`same-origin`: `no-referrer` would make browsers send `Origin: null`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(assets::stylesheet)
        .service(assets::script)
        .service(web::resource("/account").route(web::get().to(sign_in::home)));
    sign_in::routes(cfg);
    reset::routes(cfg);
    security::routes(cfg);
    passkeys::routes(cfg);
    workspaces::routes(cfg);
    audit::routes(cfg);
}

/// Whether `path` is one of the pages (they get the pages' headers).
pub fn is_page(path: &str) -> bool {
    path == "/account" || path.starts_with("/account/") || path == "/reset-password"
}

/// The headers every page answer carries.
pub fn page_headers(headers: &mut header::HeaderMap) {
    let set = |headers: &mut header::HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(
        headers,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
}

/// How a page handler fails: the visitor is not signed in (to the sign-in page), or a problem
/// that is answered as the API would (`application/problem+json`, a stable `code`).
#[derive(Debug)]
pub enum PageError {
    SignIn,
    Problem(AppError),
}

impl PageError {
    /// A session that no longer authenticates sends the visitor to sign in again; anything
    /// else (an outage) stays what it is.
    fn signed_out(error: AppError) -> Self {
        match error.code() {
            ProblemCode::Unauthenticated => Self::SignIn,
            _ => Self::Problem(error),
        }
    }
}

impl From<AppError> for PageError {
    fn from(error: AppError) -> Self {
        Self::Problem(error)
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignIn => f.write_str("sign in first"),
            Self::Problem(error) => error.fmt(f),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn => StatusCode::SEE_OTHER,
            Self::Problem(error) => error.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/account/sign-in"))
                .finish(),
            Self::Problem(error) => error.error_response(),
        }
    }
}

/// A page, with the CSRF cookie when the visitor's token is new.
fn html(csrf: &Csrf, status: StatusCode, markup: Markup) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.content_type("text/html; charset=utf-8");
    if let Some(cookie) = csrf.cookie() {
        response.cookie(cookie);
    }
    response.body(markup.into_string())
}

/// A page answered 200.
fn ok(csrf: &Csrf, markup: Markup) -> HttpResponse {
    html(csrf, StatusCode::OK, markup)
}

/// After a form did its work: the page to show next (Post/Redirect/Get).
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

/// A form's refusal shown on its page, next to the field it concerns: the status the API
/// would answer, the problem's own words. Outages and internal errors stay problems.
fn refusal(error: AppError) -> Result<(StatusCode, String), PageError> {
    let status = error.status_code();
    if status.is_server_error() {
        return Err(error.into());
    }
    Ok((status, error.to_string()))
}
