//! Signing in and out: the password step, the second step with the methods the account has,
//! single sign-on's return, registration, and a locked account's request for access.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use warden_aggregates::account::MfaMethod;
use warden_aggregates::shared::Email;

use super::guard::{
    cookie, removal, session_cookie, Csrf, Posted, SignedIn, CHALLENGE_COOKIE, SSO_ATTEMPT_SECONDS,
    SSO_COOKIE,
};
use super::layout::{alert, csrf_field, notice, page, Field, Frame, PASSWORD_RULES};
use super::{html as answer, ok, refusal, see_other, PageError, SESSION_COOKIE};
use crate::adapters::tokens;
use crate::app::sessions::{LoggedIn, LoginOutcome};
use crate::app::{AppError, ProblemCode, RequestContext};
use crate::http::extractors::context_of;
use crate::startup::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(sign_in_page)
        .service(sign_in)
        .service(second_step_page)
        .service(second_step)
        .service(email_code)
        .service(sign_out)
        .service(register_page)
        .service(register)
        .service(sso_start)
        .service(sso_return)
        .service(access_page)
        .service(access_request);
}

/// `/account`: the settings when signed in, else the sign-in page (the settings page sends
/// visitors who are not signed in there).
pub async fn home() -> HttpResponse {
    see_other("/account/security")
}

/// The messages a `?notice=` names; nothing a visitor types is echoed.
fn notice_text(slug: Option<&str>) -> Option<&'static str> {
    Some(match slug? {
        "signed_out" => "You are signed out.",
        "registered" => "Your account is ready: sign in.",
        "reset" => "Your password is changed and every session ended: sign in with the new one.",
        "code_sent" => "A code is on its way to your email address.",
        "requested" => "Your request is recorded. An administrator will look at it.",
        "enrolled" => "Your second factor is set up. Sign in again with it to continue.",
        _ => return None,
    })
}

#[derive(Deserialize)]
struct NoticeQuery {
    notice: Option<String>,
}

/// Signed in: to `location`, with the page session in its cookie and the steps before it
/// forgotten.
fn signed_in(state: &AppState, logged_in: &LoggedIn, location: &str) -> HttpResponse {
    let now = state.app.commands.clock().now();
    HttpResponse::SeeOther()
        .insert_header(("location", location.to_string()))
        .cookie(session_cookie(logged_in, now))
        .cookie(removal(CHALLENGE_COOKIE))
        .cookie(removal(SSO_COOKIE))
        .finish()
}

#[derive(Default)]
struct SignInForm<'a> {
    email: &'a str,
    error: Option<String>,
    locked: bool,
}

/// The ways to sign in besides the password.
struct Alternatives {
    passkeys: bool,
    providers: Vec<(String, String)>,
}

fn sign_in_markup(
    csrf: &Csrf,
    form: SignInForm<'_>,
    notice_slug: Option<&str>,
    alternatives: &Alternatives,
) -> Markup {
    let frame = Frame {
        title: "Sign in",
        csrf: &csrf.token,
        signed_in: false,
        script: true,
    };
    page(
        &frame,
        html! {
            (notice(notice_text(notice_slug)))
            (alert(form.error.as_deref()))
            @if form.locked {
                p { a href={ "/account/access?email=" (urlencoding::encode(form.email)) } { "Ask for access" } }
            }
            form method="post" action="/account/sign-in" novalidate {
                (csrf_field(&csrf.token))
                (Field::new("email", "Email", "email", "username webauthn").value(form.email).render())
                (Field::new("password", "Password", "password", "current-password").render())
                button type="submit" { "Sign in" }
            }
            p { a href="/account/forgot-password" { "Forgot your password?" } }
            section.alternatives aria-label="Other ways to sign in" {
                @if alternatives.passkeys {
                    button type="button" id="passkey-sign-in" data-options="/account/passkey/options"
                        data-finish="/account/passkey" { "Sign in with a passkey" }
                    p.error id="passkey-error" role="alert" hidden {}
                }
                @for (id, name) in &alternatives.providers {
                    a.button href={ "/account/sso/" (id) } { "Sign in with " (name) }
                }
            }
            p { "New here? " a href="/account/register" { "Create an account" } }
        },
    )
}

/// Passkeys when they are on, and the identity providers anyone may sign in with.
async fn alternatives(state: &AppState) -> Result<Alternatives, AppError> {
    let providers = state.app.identity_providers.public().await?;
    Ok(Alternatives {
        passkeys: state.app.passkeys.enabled(),
        providers: providers
            .into_iter()
            .map(|p| (p.id.to_string(), p.name))
            .collect(),
    })
}

#[get("/account/sign-in")]
async fn sign_in_page(
    state: web::Data<AppState>,
    csrf: Csrf,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    let alternatives = alternatives(&state).await?;
    let markup = sign_in_markup(
        &csrf,
        SignInForm::default(),
        query.notice.as_deref(),
        &alternatives,
    );
    Ok(ok(&csrf, markup))
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    email: String,
    password: SecretString,
}

#[post("/account/sign-in")]
async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    csrf: Csrf,
    Posted(form): Posted<Credentials>,
) -> Result<HttpResponse, PageError> {
    let ctx = context_of(&req);
    let sessions = &state.app.sessions;
    match sessions
        .log_in(&form.email, form.password, None, &ctx)
        .await
    {
        Ok(LoginOutcome::Authenticated(logged_in)) => {
            Ok(signed_in(&state, &logged_in, "/account/security"))
        }
        Ok(LoginOutcome::EnrollmentRequired(logged_in)) => Ok(signed_in(
            &state,
            &logged_in,
            "/account/security?notice=enroll#second-factors",
        )),
        Ok(LoginOutcome::MfaRequired {
            challenge, methods, ..
        }) => Ok(second_step_cookie(&challenge, &methods)),
        Err(error) => {
            let locked = error.code() == ProblemCode::AccountLocked;
            let (status, message) = refusal(error)?;
            let form = SignInForm {
                email: &form.email,
                error: Some(message),
                locked,
            };
            let alternatives = alternatives(&state).await?;
            Ok(answer(
                &csrf,
                status,
                sign_in_markup(&csrf, form, None, &alternatives),
            ))
        }
    }
}

/// The challenge and its methods travel to the second step in a cookie no script reads.
fn second_step_cookie(challenge: &SecretString, methods: &[MfaMethod]) -> HttpResponse {
    let methods: Vec<&str> = methods.iter().map(MfaMethod::as_str).collect();
    let value = format!("{}.{}", challenge.expose_secret(), methods.join(","));
    HttpResponse::SeeOther()
        .insert_header(("location", "/account/sign-in/second-step"))
        .cookie(cookie(CHALLENGE_COOKIE, value, Some(300)))
        .finish()
}

/// The challenge of a sign-in waiting for its second step, and the methods it offers.
pub fn waiting_challenge(req: &HttpRequest) -> Option<(SecretString, Vec<MfaMethod>)> {
    let held = req.cookie(CHALLENGE_COOKIE)?;
    let (challenge, methods) = held.value().split_once('.')?;
    let methods = methods.split(',').filter_map(method_named).collect();
    Some((SecretString::from(challenge.to_string()), methods))
}

fn method_named(slug: &str) -> Option<MfaMethod> {
    [
        MfaMethod::Totp,
        MfaMethod::RecoveryCode,
        MfaMethod::Email,
        MfaMethod::Passkey,
    ]
    .into_iter()
    .find(|m| m.as_str() == slug)
}

fn second_step_markup(
    csrf: &Csrf,
    methods: &[MfaMethod],
    error: Option<&str>,
    notice_slug: Option<&str>,
) -> Markup {
    let frame = Frame {
        title: "Confirm it is you",
        csrf: &csrf.token,
        signed_in: false,
        script: methods.contains(&MfaMethod::Passkey),
    };
    let code_form = |method: MfaMethod, label: &str, hint: &str, autocomplete: &str| {
        html! {
            form method="post" action="/account/sign-in/second-step" novalidate {
                (csrf_field(&csrf.token))
                input type="hidden" name="method" value=(method.as_str());
                (Field::new("code", label, "text", autocomplete).within(method.as_str()).hint(hint).render())
                button type="submit" { "Continue" }
            }
        }
    };
    page(
        &frame,
        html! {
            (notice(notice_text(notice_slug)))
            (alert(error))
            @if methods.contains(&MfaMethod::Passkey) {
                section { h2 { "Passkey" }
                    button type="button" id="passkey-second-factor"
                        data-options="/account/sign-in/passkey-options"
                        data-finish="/account/sign-in/passkey" { "Use your passkey" }
                    p.error id="passkey-error" role="alert" hidden {} }
            }
            @if methods.contains(&MfaMethod::Totp) {
                section { h2 { "Authenticator app" }
                    (code_form(MfaMethod::Totp, "Code from your authenticator app", "Six digits.", "one-time-code")) }
            }
            @if methods.contains(&MfaMethod::Email) {
                section { h2 { "Emailed code" }
                    form method="post" action="/account/sign-in/email-code" {
                        (csrf_field(&csrf.token))
                        button.secondary type="submit" { "Email me a code" } }
                    (code_form(MfaMethod::Email, "Code from the email", "Six digits, valid for 10 minutes.", "one-time-code")) }
            }
            @if methods.contains(&MfaMethod::RecoveryCode) {
                section { h2 { "Recovery code" }
                    (code_form(MfaMethod::RecoveryCode, "One of your recovery codes", "Each code works once.", "off")) }
            }
            p { a href="/account/sign-in" { "Start again" } }
        },
    )
}

#[get("/account/sign-in/second-step")]
async fn second_step_page(
    req: HttpRequest,
    csrf: Csrf,
    query: web::Query<NoticeQuery>,
) -> HttpResponse {
    match waiting_challenge(&req) {
        Some((_, methods)) => ok(
            &csrf,
            second_step_markup(&csrf, &methods, None, query.notice.as_deref()),
        ),
        None => see_other("/account/sign-in"),
    }
}

#[derive(Deserialize)]
struct SecondStep {
    method: String,
    #[serde(default)]
    code: String,
}

#[post("/account/sign-in/second-step")]
async fn second_step(
    state: web::Data<AppState>,
    req: HttpRequest,
    csrf: Csrf,
    Posted(form): Posted<SecondStep>,
) -> Result<HttpResponse, PageError> {
    let Some((challenge, methods)) = waiting_challenge(&req) else {
        return Ok(see_other("/account/sign-in"));
    };
    let method = method_named(&form.method)
        .filter(|m| *m != MfaMethod::Passkey)
        .ok_or_else(|| AppError::with(ProblemCode::MalformedForm, "no such method"))?;
    let ctx = context_of(&req);
    let mfa = &state.app.mfa;
    match mfa
        .complete(challenge, method, form.code.trim(), &ctx)
        .await
    {
        Ok(logged_in) => Ok(signed_in(&state, &logged_in, "/account/security")),
        Err(error) => {
            let (status, message) = refusal(error)?;
            let markup = second_step_markup(&csrf, &methods, Some(&message), None);
            Ok(answer(&csrf, status, markup))
        }
    }
}

#[post("/account/sign-in/email-code")]
async fn email_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<HttpResponse, PageError> {
    let Some((challenge, _)) = waiting_challenge(&req) else {
        return Ok(see_other("/account/sign-in"));
    };
    let ctx = context_of(&req);
    state.app.mfa.send_challenge_code(challenge, &ctx).await?;
    Ok(see_other(
        "/account/sign-in/second-step?notice=code_sent#f-code",
    ))
}

#[post("/account/sign-out")]
async fn sign_out(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<HttpResponse, PageError> {
    state.app.sessions.log_out(&page.who, &page.ctx).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/account/sign-in?notice=signed_out"))
        .cookie(removal(SESSION_COOKIE))
        .finish())
}

#[derive(Deserialize, Default)]
struct Registration {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    password: Option<SecretString>,
}

fn register_markup(csrf: &Csrf, form: &Registration, error: Option<(ProblemCode, &str)>) -> Markup {
    let frame = Frame {
        title: "Create an account",
        csrf: &csrf.token,
        signed_in: false,
        script: false,
    };
    let on = |field: &str| {
        error
            .filter(|(code, _)| field_of(*code) == field)
            .map(|(_, m)| m)
    };
    page(
        &frame,
        html! {
            (alert(on("")))
            form method="post" action="/account/register" novalidate {
                (csrf_field(&csrf.token))
                (Field::new("email", "Email", "email", "email").value(&form.email).error(on("email")).render())
                (Field::new("display_name", "Your name", "text", "name").value(&form.display_name).optional().error(on("display_name")).render())
                (Field::new("password", "Password", "password", "new-password").hint(PASSWORD_RULES).error(on("password")).render())
                button type="submit" { "Create account" }
            }
            p { "Have an account? " a href="/account/sign-in" { "Sign in" } }
        },
    )
}

/// The field a registration or password problem concerns ("" for the form as a whole).
pub fn field_of(code: ProblemCode) -> &'static str {
    match code {
        ProblemCode::InvalidEmail | ProblemCode::EmailTaken => "email",
        ProblemCode::DisplayNameTooLong => "display_name",
        ProblemCode::PasswordTooShort
        | ProblemCode::PasswordTooLong
        | ProblemCode::PasswordTooCommon => "password",
        _ => "",
    }
}

#[get("/account/register")]
async fn register_page(csrf: Csrf) -> HttpResponse {
    ok(
        &csrf,
        register_markup(&csrf, &Registration::default(), None),
    )
}

#[post("/account/register")]
async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    csrf: Csrf,
    Posted(form): Posted<Registration>,
) -> Result<HttpResponse, PageError> {
    let ctx = context_of(&req);
    match create_account(&state, &form, &ctx).await {
        Ok(()) => Ok(see_other("/account/sign-in?notice=registered")),
        Err(error) => {
            let code = error.code();
            let (status, message) = refusal(error)?;
            let markup = register_markup(&csrf, &form, Some((code, &message)));
            Ok(answer(&csrf, status, markup))
        }
    }
}

async fn create_account(
    state: &AppState,
    form: &Registration,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    let email = Email::parse(&form.email)
        .map_err(|e| AppError::with(ProblemCode::InvalidEmail, e.to_string()))?;
    let name = crate::http::routes::account::optional_name(
        Some(form.display_name.clone()),
        ProblemCode::DisplayNameTooLong,
    )?;
    let password = form
        .password
        .clone()
        .ok_or_else(|| AppError::new(ProblemCode::PasswordTooShort))?;
    state
        .app
        .accounts
        .register(email, password, name, ctx)
        .await?;
    Ok(())
}

/// Signing in at a provider, by `/v1`'s own start, returning to the pages. The attempt is bound
/// to this browser: a nonce in a cookie and in the return address, which must match on the way
/// back, so a login code someone else obtained cannot sign this browser in to their account.
#[get("/account/sso/{provider_id}")]
async fn sso_start(state: web::Data<AppState>, path: web::Path<uuid::Uuid>) -> HttpResponse {
    let attempt = tokens::mint_nonce();
    let return_to = format!("{}/account/sso?attempt={attempt}", state.public_url);
    let return_to = urlencoding::encode(&return_to);
    HttpResponse::SeeOther()
        .insert_header((
            "location",
            format!("/v1/sso/{path}/start?return_to={return_to}"),
        ))
        .cookie(cookie(SSO_COOKIE, attempt, Some(SSO_ATTEMPT_SECONDS)))
        .finish()
}

#[derive(Deserialize)]
struct SsoReturn {
    attempt: Option<String>,
    login_code: Option<String>,
}

/// Where a provider's sign-in comes back to: the login code becomes the page session, in the
/// browser that started the attempt only.
#[get("/account/sso")]
async fn sso_return(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SsoReturn>,
) -> Result<HttpResponse, PageError> {
    let code = query.login_code.as_deref().ok_or(PageError::SignIn)?;
    let held = req.cookie(SSO_COOKIE);
    let presented = query.attempt.as_deref().unwrap_or_default();
    let started_here = held.is_some_and(|held| {
        !presented.is_empty() && bool::from(held.value().as_bytes().ct_eq(presented.as_bytes()))
    });
    if !started_here {
        return Err(AppError::new(ProblemCode::SsoAttemptInvalid).into());
    }
    let logged_in = state.app.sso.exchange(code).await?;
    Ok(signed_in(&state, &logged_in, "/account/security"))
}

#[derive(Deserialize, Default)]
struct AccessQuery {
    #[serde(default)]
    email: String,
}

fn access_markup(csrf: &Csrf, email: &str, error: Option<&str>) -> Markup {
    let frame = Frame {
        title: "Ask for access",
        csrf: &csrf.token,
        signed_in: false,
        script: false,
    };
    page(
        &frame,
        html! {
            p { "Your account is locked. Tell an administrator what happened; they can lift the lock." }
            (alert(error))
            form method="post" action="/account/access" novalidate {
                (csrf_field(&csrf.token))
                (Field::new("email", "Email", "email", "username").value(email).render())
                div.field {
                    label for="f-reason" { "What happened" }
                    textarea id="f-reason" name="reason" required rows="4" maxlength="2000" {}
                }
                button type="submit" { "Send the request" }
            }
        },
    )
}

#[get("/account/access")]
async fn access_page(csrf: Csrf, query: web::Query<AccessQuery>) -> HttpResponse {
    ok(&csrf, access_markup(&csrf, &query.email, None))
}

#[derive(Deserialize)]
struct AccessForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    reason: String,
}

#[post("/account/access")]
async fn access_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    csrf: Csrf,
    Posted(form): Posted<AccessForm>,
) -> Result<HttpResponse, PageError> {
    let ctx = context_of(&req);
    let admin = &state.app.admin;
    match admin.request_access(&form.email, &form.reason, &ctx).await {
        Ok(()) => Ok(see_other("/account/sign-in?notice=requested")),
        Err(error) => {
            let (status, message) = refusal(error)?;
            let markup = access_markup(&csrf, &form.email, Some(&message));
            Ok(answer(&csrf, status, markup))
        }
    }
}
