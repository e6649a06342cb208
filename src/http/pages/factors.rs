//! Second factors on the settings page: the authenticator app (QR code, secret as text,
//! confirmation), recovery codes (shown once, copy and download, regenerate), emailed codes and
//! passkeys.

use actix_web::{get, post, web, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use maud::{html, Markup};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use warden_aggregates::account::{MfaMethod, Reauthentication};

use super::guard::{removal, Posted, SignedIn};
use super::layout::{alert, button_form, csrf_field, when, Field};
use super::security::{maybe_when, refused, shown_once, Section};
use super::{html as answer, refusal, see_other, PageError, SESSION_COOKIE};
use crate::app::mfa::reveal;
use crate::startup::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(start_totp)
        .service(confirm_totp)
        .service(totp_off)
        .service(recovery_codes)
        .service(start_email)
        .service(email_page)
        .service(confirm_email)
        .service(email_off)
        .service(rename_passkey)
        .service(remove_passkey);
}

pub fn section(section: &Section<'_>) -> Markup {
    html! {
        section id="second-factors" aria-labelledby="factors-title" {
            h2 id="factors-title" { "Two-step sign-in" }
            (totp(section))
            (recovery(section))
            (email(section))
            (passkeys(section))
        }
    }
}

fn totp(section: &Section<'_>) -> Markup {
    let profile = &section.settings.profile;
    let form = "totp";
    html! {
        h3 { "Authenticator app" }
        (alert(section.error(form, "")))
        @if section.settings.has(MfaMethod::Totp) {
            p { "On. Sign-ins ask for a code from your app." }
            @if !section.settings.enrollment_only {
                form method="post" action="/account/security/totp/off" novalidate {
                    (csrf_field(section.csrf))
                    (Field::new("password", "Password, to turn it off", "password", "current-password").within(form).error(section.error(form, "password")).render())
                    button.danger type="submit" { "Turn off the authenticator app" }
                }
            }
        } @else if profile.totp_pending {
            p { "Set-up started: enter the code your app shows to finish." }
            (confirm_form(section.csrf, section.error(form, "code")))
            (button_form("/account/security/totp", section.csrf, "Start again with a new QR code", false))
        } @else {
            p { "Off. An app such as 1Password, Google Authenticator or Aegis gives a new code every 30 seconds." }
            (button_form("/account/security/totp", section.csrf, "Set up an authenticator app", false))
        }
    }
}

fn confirm_form(csrf: &str, error: Option<&str>) -> Markup {
    html! {
        form method="post" action="/account/security/totp/confirm" novalidate {
            (csrf_field(csrf))
            (Field::new("code", "Code from the app", "text", "one-time-code").within("totp").hint("Six digits.").error(error).render())
            button type="submit" { "Confirm" }
        }
    }
}

fn recovery(section: &Section<'_>) -> Markup {
    let form = "recovery";
    html! {
        @if section.settings.has(MfaMethod::Totp) && !section.settings.enrollment_only {
            h3 { "Recovery codes" }
            p { (section.settings.profile.recovery_codes_remaining) " unused. Each signs you in once when your app is not at hand." }
            (alert(section.error(form, "")))
            form method="post" action="/account/security/recovery-codes" novalidate {
                (csrf_field(section.csrf))
                (Field::new("code", "Code from your app, to make new codes", "text", "one-time-code").within(form).error(section.error(form, "code")).render())
                button.secondary type="submit" { "Make new recovery codes" }
            }
        }
    }
}

fn email(section: &Section<'_>) -> Markup {
    let form = "email";
    html! {
        h3 { "Emailed codes" }
        (alert(section.error(form, "")))
        @if section.settings.has(MfaMethod::Email) {
            p { "On. Sign-ins can mail a code to " (section.settings.profile.email.text()) "." }
            @if !section.settings.enrollment_only {
                form method="post" action="/account/security/email/off" novalidate {
                    (csrf_field(section.csrf))
                    (Field::new("password", "Password, to turn them off", "password", "current-password").within(form).error(section.error(form, "password")).render())
                    button.danger type="submit" { "Turn off emailed codes" }
                }
            }
        } @else {
            p { "Off." }
            (button_form("/account/security/email", section.csrf, "Turn on emailed codes", false))
        }
    }
}

fn passkeys(section: &Section<'_>) -> Markup {
    let form = "passkeys";
    html! {
        h3 id="passkeys" { "Passkeys" }
        p { "A passkey signs you in with your device's lock (fingerprint, face or PIN), with no password." }
        (alert(section.error(form, "")))
        @if !section.settings.passkeys.is_empty() {
            ul.items {
                @for (i, passkey) in section.settings.passkeys.iter().enumerate() {
                    @let rename = format!("rename{i}");
                    @let remove = format!("remove{i}");
                    li {
                        strong { (passkey.name) }
                        span.meta { " added " (when(passkey.created_at)) ", last used " (maybe_when(passkey.last_used_at)) }
                        @if !section.settings.enrollment_only {
                            details {
                                summary { "Rename or remove" }
                                form method="post" action={ "/account/security/passkeys/" (passkey.id) "/rename" } {
                                    (csrf_field(section.csrf))
                                    (Field::new("name", "New name", "text", "off").within(&rename).value(&passkey.name).render())
                                    button.secondary type="submit" { "Rename" }
                                }
                                form method="post" action={ "/account/security/passkeys/" (passkey.id) "/remove" } {
                                    (csrf_field(section.csrf))
                                    (Field::new("password", "Password, to remove it", "password", "current-password").within(&remove).render())
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !section.settings.passkeys_on {
            p { "Passkeys are off on this server: its public address names no domain." }
        } @else {
        form id="passkey-add" data-options="/account/security/passkeys/options" data-finish="/account/security/passkeys" novalidate {
            (Field::new("passkey_name", "Name for the new passkey", "text", "off").hint("For example “Work laptop”.").render())
            (Field::new("passkey_password", "Password", "password", "current-password").render())
            button type="submit" { "Add a passkey" }
            p.error id="passkey-error" role="alert" hidden {}
        }
        }
    }
}

/// A factor is on. An enrollment-only session stays one (it never passed a second factor), so
/// it ends here and the visitor signs in again with the new factor; others go on to `next`.
pub async fn enrolled(
    state: &AppState,
    page: &SignedIn,
    next: &str,
) -> Result<HttpResponse, PageError> {
    if !page.who.enrollment_only {
        return Ok(see_other(next));
    }
    state.app.sessions.log_out(&page.who, &page.ctx).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/account/sign-in?notice=enrolled"))
        .cookie(removal(SESSION_COOKIE))
        .finish())
}

#[post("/account/security/totp")]
async fn start_totp(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<HttpResponse, PageError> {
    let enrollment = match state.app.mfa.enroll_totp(&page.who, &page.ctx).await {
        Ok(enrollment) => enrollment,
        Err(error) => return refused(&state, &page, "totp", error).await,
    };
    let qr = STANDARD.encode(enrollment.qr_svg.expose_secret());
    let secret = reveal(&enrollment.secret);
    let body = html! {
        ol.steps {
            li { "Scan this QR code with your authenticator app." }
            li { "Or type the key by hand: " code id="totp-secret" { (secret) } }
            li { "Enter the six-digit code the app shows." }
        }
        img.qr id="totp-qr" src={ "data:image/svg+xml;base64," (qr) } alt="QR code for your authenticator app" width="240" height="240";
        (codes_list(&enrollment.recovery_codes))
        (confirm_form(&page.csrf.token, None))
    };
    Ok(shown_once(&page, "Set up your authenticator app", body))
}

/// Recovery codes, shown this once, with copy and download.
fn codes_list(codes: &[SecretString]) -> Markup {
    html! {
        section aria-labelledby="codes-title" {
            h2 id="codes-title" { "Your recovery codes" }
            p { "Keep them somewhere safe: each signs you in once if you lose your app. They are shown only now." }
            ul.codes id="recovery-codes" {
                @for code in codes { li { code { (code.expose_secret()) } } }
            }
            button.secondary type="button" data-copy="recovery-codes" { "Copy" }
            button.secondary type="button" data-download="recovery-codes" data-filename="warden-recovery-codes.txt" { "Download" }
        }
    }
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

#[post("/account/security/totp/confirm")]
async fn confirm_totp(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(form): Posted<CodeForm>,
) -> Result<HttpResponse, PageError> {
    let mfa = &state.app.mfa;
    match mfa
        .confirm_totp(&page.who, form.code.trim(), &page.ctx)
        .await
    {
        Ok(()) => enrolled(&state, &page, "/account/security?notice=totp_on").await,
        Err(error) => refused(&state, &page, "totp", error).await,
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    password: SecretString,
}

#[post("/account/security/totp/off")]
async fn totp_off(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(form): Posted<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let proof = Reauthentication::Password(form.password);
    let mfa = &state.app.mfa;
    match mfa.disable_totp(&page.who, proof, &page.ctx).await {
        Ok(()) => Ok(see_other("/account/security?notice=totp_off")),
        Err(error) => refused(&state, &page, "totp", error).await,
    }
}

#[post("/account/security/recovery-codes")]
async fn recovery_codes(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(form): Posted<CodeForm>,
) -> Result<HttpResponse, PageError> {
    let mfa = &state.app.mfa;
    match mfa
        .replace_recovery_codes(&page.who, form.code.trim(), &page.ctx)
        .await
    {
        Ok(codes) => {
            let body = html! {
                p.notice role="status" { "Your old recovery codes no longer work." }
                (codes_list(&codes))
                p { a href="/account/security" { "Back to security settings" } }
            };
            Ok(shown_once(&page, "New recovery codes", body))
        }
        Err(error) => refused(&state, &page, "recovery", error).await,
    }
}

#[post("/account/security/email")]
async fn start_email(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<HttpResponse, PageError> {
    match state.app.mfa.start_email(&page.who, &page.ctx).await {
        Ok(()) => Ok(see_other("/account/security/email")),
        Err(error) => refused(&state, &page, "email", error).await,
    }
}

fn email_markup(page: &SignedIn, error: Option<&str>) -> Markup {
    html! {
        p { "We mailed you a six-digit code. Enter it to turn emailed codes on." }
        form method="post" action="/account/security/email/confirm" novalidate {
            (csrf_field(&page.csrf.token))
            (Field::new("code", "Code from the email", "text", "one-time-code").error(error).render())
            button type="submit" { "Turn on emailed codes" }
        }
        p { a href="/account/security" { "Back to security settings" } }
    }
}

#[get("/account/security/email")]
async fn email_page(page: SignedIn) -> HttpResponse {
    shown_once(
        &page,
        "Confirm your email address",
        email_markup(&page, None),
    )
}

#[post("/account/security/email/confirm")]
async fn confirm_email(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(form): Posted<CodeForm>,
) -> Result<HttpResponse, PageError> {
    let mfa = &state.app.mfa;
    match mfa
        .confirm_email(&page.who, form.code.trim(), &page.ctx)
        .await
    {
        Ok(()) => enrolled(&state, &page, "/account/security?notice=email_on").await,
        Err(error) => {
            let (status, message) = refusal(error)?;
            let frame = super::layout::Frame {
                title: "Confirm your email address",
                csrf: &page.csrf.token,
                signed_in: true,
                script: false,
            };
            let markup = super::layout::page(&frame, email_markup(&page, Some(&message)));
            Ok(answer(&page.csrf, status, markup))
        }
    }
}

#[post("/account/security/email/off")]
async fn email_off(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(form): Posted<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let mfa = &state.app.mfa;
    match mfa.disable_email(&page.who, form.password, &page.ctx).await {
        Ok(()) => Ok(see_other("/account/security?notice=email_off")),
        Err(error) => refused(&state, &page, "email", error).await,
    }
}

#[derive(Deserialize)]
struct NameForm {
    #[serde(default)]
    name: String,
}

#[post("/account/security/passkeys/{id}/rename")]
async fn rename_passkey(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<String>,
    Posted(form): Posted<NameForm>,
) -> Result<HttpResponse, PageError> {
    let passkeys = &state.app.passkeys;
    match passkeys
        .rename(&page.who, &page.ctx, &path, &form.name)
        .await
    {
        Ok(()) => Ok(see_other(
            "/account/security?notice=passkey_renamed#passkeys",
        )),
        Err(error) => refused(&state, &page, "passkeys", error).await,
    }
}

#[post("/account/security/passkeys/{id}/remove")]
async fn remove_passkey(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<String>,
    Posted(form): Posted<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let proof = Reauthentication::Password(form.password);
    let passkeys = &state.app.passkeys;
    match passkeys.remove(&page.who, &page.ctx, &path, proof).await {
        Ok(()) => Ok(see_other(
            "/account/security?notice=passkey_removed#passkeys",
        )),
        Err(error) => refused(&state, &page, "passkeys", error).await,
    }
}
