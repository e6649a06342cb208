//! The calls the pages' script makes for WebAuthn, which only a script can drive: options in,
//! the authenticator's answer back. The session they start lands in the pages' cookie; no
//! token ever reaches the script.

use actix_web::{post, web, HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};
use warden_aggregates::account::Reauthentication;

use super::guard::{removal, session_cookie, Scripted, SignedIn, CHALLENGE_COOKIE};
use super::sign_in::waiting_challenge;
use super::{PageError, SESSION_COOKIE};
use crate::app::sessions::LoggedIn;
use crate::app::{AppError, ProblemCode};
use crate::http::extractors::context_of;
use crate::startup::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(sign_in_options)
        .service(sign_in)
        .service(second_factor_options)
        .service(second_factor)
        .service(registration_options)
        .service(register);
}

/// Where the script goes next, with the new session in its cookie.
fn signed_in(state: &AppState, logged_in: &LoggedIn) -> HttpResponse {
    let now = state.app.commands.clock().now();
    HttpResponse::Ok()
        .cookie(session_cookie(logged_in, now))
        .cookie(removal(CHALLENGE_COOKIE))
        .json(json!({ "redirect": "/account/security" }))
}

fn challenge(req: &HttpRequest) -> Result<SecretString, PageError> {
    waiting_challenge(req)
        .map(|(challenge, _)| challenge)
        .ok_or_else(|| AppError::new(ProblemCode::ChallengeInvalid).into())
}

#[derive(Deserialize)]
struct Answer {
    credential: Value,
    #[serde(default)]
    name: String,
}

#[post("/account/passkey/options")]
async fn sign_in_options(
    state: web::Data<AppState>,
    req: HttpRequest,
    Scripted(_): Scripted<Value>,
) -> Result<HttpResponse, PageError> {
    let options = state
        .app
        .passkeys
        .sign_in_options(&context_of(&req))
        .await?;
    Ok(HttpResponse::Ok().json(options))
}

#[post("/account/passkey")]
async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    Scripted(answer): Scripted<Answer>,
) -> Result<HttpResponse, PageError> {
    let passkeys = &state.app.passkeys;
    let logged_in = passkeys
        .sign_in(answer.credential, &context_of(&req))
        .await?;
    Ok(signed_in(&state, &logged_in))
}

#[post("/account/sign-in/passkey-options")]
async fn second_factor_options(
    state: web::Data<AppState>,
    req: HttpRequest,
    Scripted(_): Scripted<Value>,
) -> Result<HttpResponse, PageError> {
    let passkeys = &state.app.passkeys;
    let options = passkeys
        .second_factor_options(challenge(&req)?, &context_of(&req))
        .await?;
    Ok(HttpResponse::Ok().json(options))
}

#[post("/account/sign-in/passkey")]
async fn second_factor(
    state: web::Data<AppState>,
    req: HttpRequest,
    Scripted(answer): Scripted<Answer>,
) -> Result<HttpResponse, PageError> {
    let passkeys = &state.app.passkeys;
    let logged_in = passkeys
        .second_factor(challenge(&req)?, answer.credential, &context_of(&req))
        .await?;
    Ok(signed_in(&state, &logged_in))
}

#[derive(Deserialize)]
struct Password {
    password: SecretString,
}

#[post("/account/security/passkeys/options")]
async fn registration_options(
    state: web::Data<AppState>,
    page: SignedIn,
    Scripted(body): Scripted<Password>,
) -> Result<HttpResponse, PageError> {
    let proof = Reauthentication::Password(body.password);
    let passkeys = &state.app.passkeys;
    let options = passkeys
        .start_registration(&page.who, &page.ctx, proof)
        .await?;
    Ok(HttpResponse::Ok().json(options))
}

#[post("/account/security/passkeys")]
async fn register(
    state: web::Data<AppState>,
    page: SignedIn,
    Scripted(answer): Scripted<Answer>,
) -> Result<HttpResponse, PageError> {
    let passkeys = &state.app.passkeys;
    passkeys
        .finish_registration(&page.who, &page.ctx, answer.credential, &answer.name)
        .await?;
    if page.who.enrollment_only {
        // As after any first factor set up while enrolling: sign in again with it.
        state.app.sessions.log_out(&page.who, &page.ctx).await?;
        return Ok(HttpResponse::Ok()
            .cookie(removal(SESSION_COOKIE))
            .json(json!({ "redirect": "/account/sign-in?notice=enrolled" })));
    }
    Ok(HttpResponse::Ok().json(json!({
        "redirect": "/account/security?notice=passkey_added#passkeys"
    })))
}
