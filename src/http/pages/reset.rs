//! Forgotten passwords: asking for a link, and the page the mailed link opens
//! (`/reset-password?token=…`, as the mail writes it).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use secrecy::SecretString;
use serde::Deserialize;

use super::guard::{Csrf, Posted};
use super::layout::{alert, csrf_field, page, Field, Frame, PASSWORD_RULES};
use super::{html as answer, ok, refusal, see_other, PageError};
use crate::app::mail_outbox::RESET_TOKEN_TTL_MINUTES;
use crate::http::extractors::context_of;
use crate::startup::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(forgot_page)
        .service(forgot)
        .service(web::resource("/reset-password").route(web::get().to(reset_page)))
        .service(
            web::resource("/account/reset-password")
                .route(web::get().to(reset_page))
                .route(web::post().to(reset)),
        );
}

fn frame<'a>(title: &'a str, csrf: &'a Csrf) -> Frame<'a> {
    Frame {
        title,
        csrf: &csrf.token,
        signed_in: false,
        script: false,
    }
}

fn forgot_markup(csrf: &Csrf, sent: bool, error: Option<&str>) -> Markup {
    page(
        &frame("Forgot your password?", csrf),
        html! {
            @if sent {
                p.notice role="status" { "If an account has this address, a link to choose a new password is on its way. It works for " (RESET_TOKEN_TTL_MINUTES) " minutes, once." }
            } @else {
                p { "Give the address you sign in with; we mail it a link to choose a new password." }
            }
            (alert(error))
            form method="post" action="/account/forgot-password" novalidate {
                (csrf_field(&csrf.token))
                (Field::new("email", "Email", "email", "username").render())
                button type="submit" { "Mail me a link" }
            }
            p { a href="/account/sign-in" { "Back to sign in" } }
        },
    )
}

#[derive(Deserialize)]
struct SentQuery {
    sent: Option<String>,
}

#[get("/account/forgot-password")]
async fn forgot_page(csrf: Csrf, query: web::Query<SentQuery>) -> HttpResponse {
    ok(&csrf, forgot_markup(&csrf, query.sent.is_some(), None))
}

#[derive(Deserialize)]
struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// The same answer whether or not the address has an account.
#[post("/account/forgot-password")]
async fn forgot(
    state: web::Data<AppState>,
    req: HttpRequest,
    csrf: Csrf,
    Posted(form): Posted<ForgotForm>,
) -> Result<HttpResponse, PageError> {
    let ctx = context_of(&req);
    let accounts = &state.app.accounts;
    match accounts.request_password_reset(&form.email, &ctx) {
        Ok(()) => Ok(see_other("/account/forgot-password?sent=1")),
        Err(error) => {
            let (status, message) = refusal(error)?;
            Ok(answer(
                &csrf,
                status,
                forgot_markup(&csrf, false, Some(&message)),
            ))
        }
    }
}

fn reset_markup(csrf: &Csrf, token: &str, error: Option<&str>) -> Markup {
    page(
        &frame("Choose a new password", csrf),
        html! {
            @if token.is_empty() {
                p { "This page opens from the link in a password reset mail. "
                    a href="/account/forgot-password" { "Ask for a link" } }
            } @else {
                p { "Every session of the account ends when the password changes." }
                form method="post" action="/account/reset-password" novalidate {
                    (csrf_field(&csrf.token))
                    input type="hidden" name="token" value=(token);
                    (Field::new("new_password", "New password", "password", "new-password").hint(PASSWORD_RULES).error(error).render())
                    button type="submit" { "Set the new password" }
                }
            }
        },
    )
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn reset_page(csrf: Csrf, query: web::Query<TokenQuery>) -> HttpResponse {
    ok(&csrf, reset_markup(&csrf, &query.token, None))
}

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    token: String,
    new_password: SecretString,
}

async fn reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    csrf: Csrf,
    Posted(form): Posted<ResetForm>,
) -> Result<HttpResponse, PageError> {
    let ctx = context_of(&req);
    let token = SecretString::from(form.token.clone());
    let accounts = &state.app.accounts;
    match accounts
        .confirm_password_reset(token, form.new_password, &ctx)
        .await
    {
        Ok(()) => Ok(see_other("/account/sign-in?notice=reset")),
        Err(error) => {
            let (status, message) = refusal(error)?;
            let markup = reset_markup(&csrf, &form.token, Some(&message));
            Ok(answer(&csrf, status, markup))
        }
    }
}
