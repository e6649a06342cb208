//! API access tokens (created after the password, shown once; scopes, expiry, last use,
//! revoking) and the reporting PIN (set, remove, verify, with its unlock time).

use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use maud::{html, Markup};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;
use warden_aggregates::shared::{Scope, TokenId};

use super::guard::{Posted, SignedIn};
use super::layout::{alert, button_form, csrf_field, when, Field};
use super::security::{maybe_when, refused, shown_once, Section};
use super::{see_other, PageError};
use crate::app::api_tokens::platform_wide;
use crate::app::{AppError, ProblemCode};
use crate::startup::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(create_token)
        .service(revoke_token)
        .service(set_pin)
        .service(remove_pin)
        .service(verify_pin);
}

/// What a scope lets a token do, in words.
fn scope_words(scope: Scope) -> &'static str {
    match scope {
        Scope::Read => "read your account and its history",
        Scope::Write => "change things, such as ending sessions",
        Scope::AuditRead => "read the platform's audit trail",
        Scope::EventsRead => "read the platform's event stream",
        Scope::Introspect => "check other tokens",
        Scope::Admin => "act as a platform administrator",
        Scope::Archival => "read and acknowledge archival purges",
    }
}

pub fn section(section: &Section<'_>) -> Markup {
    let form = "tokens";
    let scopes: Vec<Scope> = Scope::ALL
        .into_iter()
        .filter(|s| section.admin || !platform_wide(s))
        .collect();
    html! {
        section id="tokens" aria-labelledby="tokens-title" {
            h2 id="tokens-title" { "API access tokens" }
            p { "A token lets a script or service call Warden's API as you, with only the scopes you give it, limited to 60 requests a minute." }
            @if !section.settings.tokens.is_empty() {
                div.scroll { table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Scopes" } th scope="col" { "Created" }
                        th scope="col" { "Expires" } th scope="col" { "Last used" } th scope="col" { span.visually-hidden { "Actions" } } } }
                    tbody { @for token in &section.settings.tokens { tr {
                        td { (token.name) }
                        td { (token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { (when(token.created_at)) }
                        td { @if token.expired { "expired" } @else { (maybe_when(token.expires_at)) } }
                        td { (maybe_when(token.last_used_at)) }
                        td { (button_form(&format!("/account/security/tokens/{}/revoke", token.id), section.csrf, "Revoke", true)) }
                    } } }
                } }
            }
            h3 { "Create a token" }
            (alert(section.error(form, "")))
            form method="post" action="/account/security/tokens" novalidate {
                (csrf_field(section.csrf))
                (Field::new("name", "Name", "text", "off").within(form).hint("What uses it, for example “Nightly report”.").error(section.error(form, "name")).render())
                fieldset {
                    legend { "Scopes" }
                    @for scope in scopes {
                        div.check {
                            input type="checkbox" id={ "scope-" (scope.as_str()) } name="scope" value=(scope.as_str()) checked[scope == Scope::Read];
                            label for={ "scope-" (scope.as_str()) } { code { (scope.as_str()) } " — " (scope_words(scope)) }
                        }
                    }
                }
                (Field::new("expires_on", "Expires on (optional)", "date", "off").within(form).hint("The token stops working at the end of this day (UTC).").optional().error(section.error(form, "expires_at")).render())
                (Field::new("password", "Password", "password", "current-password").within(form).error(section.error(form, "password")).render())
                button type="submit" { "Create token" }
            }
        }
    }
}

/// The token form: repeated `scope` fields, so read as pairs.
struct TokenForm {
    name: String,
    scopes: Vec<Scope>,
    expires_at: Option<DateTime<Utc>>,
    password: SecretString,
}

impl TokenForm {
    fn of(pairs: Vec<(String, String)>) -> Result<Self, AppError> {
        let mut form = Self {
            name: String::new(),
            scopes: Vec::new(),
            expires_at: None,
            password: SecretString::from(String::new()),
        };
        for (name, value) in pairs {
            match name.as_str() {
                "name" => form.name = value,
                "password" => form.password = SecretString::from(value),
                "scope" => form.scopes.extend(Scope::parse(&value)),
                "expires_on" if !value.is_empty() => {
                    let day = NaiveDate::parse_from_str(&value, "%Y-%m-%d").map_err(|_| {
                        AppError::with(
                            ProblemCode::MalformedForm,
                            "an expiry is a date: YYYY-MM-DD",
                        )
                    })?;
                    form.expires_at = day.and_hms_opt(23, 59, 59).map(|t| t.and_utc());
                }
                _ => {}
            }
        }
        form.scopes.sort();
        form.scopes.dedup();
        if form.scopes.is_empty() {
            form.scopes.push(Scope::Read);
        }
        Ok(form)
    }
}

#[post("/account/security/tokens")]
async fn create_token(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(pairs): Posted<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let created = match TokenForm::of(pairs) {
        Ok(form) => {
            let tokens = &state.app.api_tokens;
            tokens
                .create(
                    &page.who,
                    &form.name,
                    form.password,
                    form.scopes,
                    form.expires_at,
                    &page.ctx,
                )
                .await
        }
        Err(error) => Err(error),
    };
    let created = match created {
        Ok(created) => created,
        Err(error) => return refused(&state, &page, "tokens", error).await,
    };
    let token = created.token.expose_secret();
    let body = html! {
        p.notice role="status" { "Token “" (created.name) "” is ready. Copy it now: it is shown only this once." }
        p { code.secret id="new-token" { (token) } }
        button.secondary type="button" data-copy="new-token" { "Copy" }
        h2 { "Try it" }
        pre { code { "curl -H 'Authorization: Bearer " (token) "' " (state.public_url) "/v1/me" } }
        p { a href="/account/security#tokens" { "Back to security settings" } }
    };
    Ok(shown_once(&page, "Your new API token", body))
}

#[post("/account/security/tokens/{id}/revoke")]
async fn revoke_token(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<Uuid>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<HttpResponse, PageError> {
    let token_id = TokenId(path.into_inner());
    let tokens = &state.app.api_tokens;
    match tokens.revoke(&page.who, token_id, &page.ctx).await {
        Ok(()) => Ok(see_other("/account/security?notice=token_revoked#tokens")),
        Err(error) => refused(&state, &page, "tokens", error).await,
    }
}

pub fn pin_section(section: &Section<'_>) -> Markup {
    let form = "pin";
    let Some(pin) = &section.settings.pin else {
        return html! {};
    };
    html! {
        section id="pin" aria-labelledby="pin-title" {
            h2 id="pin-title" { "Reporting PIN" }
            p { "The PIN unlocks reporting history for one session at a time." }
            (alert(section.error(form, "")))
            @if pin.set {
                @if let Some(until) = pin.unlocked_until {
                    p.notice role="status" { "Reporting history is unlocked for this session until " (when(until)) "." }
                } @else {
                    form method="post" action="/account/security/pin/verify" novalidate {
                        (csrf_field(section.csrf))
                        (Field::new("pin", "PIN, to unlock reporting history", "password", "off").within("pin-verify").error(section.error(form, "pin")).render())
                        button type="submit" { "Unlock" }
                    }
                }
                form method="post" action="/account/security/pin/remove" novalidate {
                    (csrf_field(section.csrf))
                    (Field::new("password", "Password, to remove the PIN", "password", "current-password").within("pin-remove").error(section.error(form, "password")).render())
                    button.danger type="submit" { "Remove the PIN" }
                }
            } @else {
                form method="post" action="/account/security/pin" novalidate {
                    (csrf_field(section.csrf))
                    (Field::new("pin", "New PIN", "password", "off").within(form).hint("4 to 8 digits.").error(section.error(form, "pin")).render())
                    (Field::new("password", "Password", "password", "current-password").within(form).error(section.error(form, "password")).render())
                    button type="submit" { "Set the PIN" }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct PinForm {
    pin: SecretString,
    password: SecretString,
}

#[post("/account/security/pin")]
async fn set_pin(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(form): Posted<PinForm>,
) -> Result<HttpResponse, PageError> {
    let pin = &state.app.pin;
    match pin.set(&page.who, form.pin, form.password, &page.ctx).await {
        Ok(()) => Ok(see_other("/account/security?notice=pin_set#pin")),
        Err(error) => refused(&state, &page, "pin", error).await,
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    password: SecretString,
}

#[post("/account/security/pin/remove")]
async fn remove_pin(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(form): Posted<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let pin = &state.app.pin;
    match pin.remove(&page.who, form.password, &page.ctx).await {
        Ok(()) => Ok(see_other("/account/security?notice=pin_removed#pin")),
        Err(error) => refused(&state, &page, "pin", error).await,
    }
}

#[derive(Deserialize)]
struct VerifyForm {
    pin: SecretString,
}

#[post("/account/security/pin/verify")]
async fn verify_pin(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(form): Posted<VerifyForm>,
) -> Result<HttpResponse, PageError> {
    let pin = &state.app.pin;
    match pin.verify(&page.who, form.pin, &page.ctx).await {
        Ok(_) => Ok(see_other("/account/security?notice=pin_verified#pin")),
        Err(error) => refused(&state, &page, "pin", error).await,
    }
}
