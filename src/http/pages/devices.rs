//! Where the account is signed in: every session (this one marked) with its device, address,
//! method and times, how ended ones ended, the failed attempts; ending one, or all.

use actix_web::{post, web, HttpResponse};
use maud::{html, Markup};
use uuid::Uuid;
use warden_aggregates::shared::{ProviderId, SessionId};

use super::guard::{removal, Posted, SignedIn};
use super::layout::{button_form, when};
use super::security::{refused, Section};
use super::{see_other, PageError, SESSION_COOKIE};
use crate::app::sessions::SessionEntry;
use crate::startup::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(end_session)
        .service(end_all)
        .service(unlink_provider);
}

/// The identity providers that sign the account in, each with a way to unlink it.
pub fn providers_section(section: &Section<'_>) -> Markup {
    let identities = &section.settings.identities;
    html! {
        @if !identities.is_empty() {
            section id="providers" aria-labelledby="providers-title" {
                h2 id="providers-title" { "Single sign-on" }
                (super::layout::alert(section.error("providers", "")))
                ul.items {
                    @for identity in identities {
                        li {
                            strong { (identity.provider_name.as_deref().unwrap_or("A removed provider")) }
                            span.meta { " · " (identity.issuer) " · linked " (when(identity.linked_at)) }
                            " "
                            (button_form(&format!("/account/security/providers/{}/unlink", identity.provider_id), section.csrf, "Unlink", true))
                        }
                    }
                }
            }
        }
    }
}

#[post("/account/security/providers/{id}/unlink")]
async fn unlink_provider(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<Uuid>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<HttpResponse, PageError> {
    let provider = ProviderId(path.into_inner());
    match state.app.sso.unlink(&page.who, provider, &page.ctx).await {
        Ok(()) => Ok(see_other("/account/security?notice=provider_unlinked")),
        Err(error) => refused(&state, &page, "providers", error).await,
    }
}

/// The words for how a session ended.
fn ended_how(reason: Option<&str>) -> &'static str {
    match reason {
        Some("logged_out") => "signed out",
        Some("revoked") => "signed out from another session",
        Some("revoked_all") => "logged out of all devices",
        Some("password_changed") => "password changed",
        Some("password_reset") => "password reset",
        Some("idle_timeout") => "idle too long",
        Some("expired") => "expired",
        Some("mfa_policy") => "a workspace began to require a second factor",
        Some("provider_logout") => "signed out at the identity provider",
        _ => "ended",
    }
}

/// How the session signed in, in words.
fn method_words(method: &str) -> &'static str {
    match method {
        "password" => "password",
        "totp" => "password and authenticator app",
        "recovery_code" => "password and recovery code",
        "email" => "password and emailed code",
        "password_and_passkey" => "password and passkey",
        "passkey" => "passkey",
        "sso" => "single sign-on",
        _ => "other",
    }
}

fn device(session: &SessionEntry) -> String {
    let named = session.device.as_ref().map(|d| d.text().to_string());
    let agent = session.user_agent.as_ref().map(|u| u.text().to_string());
    named
        .or(agent)
        .map(|d| d.chars().take(120).collect())
        .unwrap_or_else(|| "Unknown device".to_string())
}

fn row(section: &Section<'_>, session: &SessionEntry) -> Markup {
    html! {
        tr {
            td {
                (device(session))
                @if session.current { " " strong.badge { "This session" } }
            }
            td { (session.ip.as_ref().map(|ip| ip.text().to_string()).unwrap_or_else(|| "—".into())) }
            td { (method_words(&session.method)) }
            td { (when(session.started_at)) }
            td { (when(session.last_seen_at)) }
            td {
                @if let Some(ended) = session.ended_at {
                    (when(ended)) ", " (ended_how(session.end_reason.as_deref()))
                } @else if session.current {
                    "Active"
                } @else {
                    (button_form(&format!("/account/security/sessions/{}/end", session.id), section.csrf, "Sign out", false))
                }
            }
        }
    }
}

pub fn section(section: &Section<'_>) -> Markup {
    let settings = section.settings;
    html! {
        section id="sessions" aria-labelledby="sessions-title" {
            h2 id="sessions-title" { "Where you are signed in" }
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Device" } th scope="col" { "Address" } th scope="col" { "Method" }
                        th scope="col" { "Signed in" } th scope="col" { "Last seen" } th scope="col" { "Status" }
                    } }
                    tbody { @for session in &settings.sessions { (row(section, session)) } }
                }
            }
            (button_form("/account/security/sessions/end-all", section.csrf, "Log out of all devices", true))
            h3 { "Failed sign-in attempts" }
            @if settings.failures.is_empty() {
                p { "None recorded." }
            } @else {
                ul.items {
                    @for failure in &settings.failures {
                        li {
                            (when(failure.at)) " · " (failure.purpose.replace('_', " "))
                            " · " (failure.ip.as_ref().map(|ip| ip.text().to_string()).unwrap_or_else(|| "unknown address".into()))
                        }
                    }
                }
            }
        }
    }
}

#[post("/account/security/sessions/{id}/end")]
async fn end_session(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<Uuid>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<HttpResponse, PageError> {
    let session_id = SessionId(path.into_inner());
    let sessions = &state.app.sessions;
    match sessions.end_session(&page.who, session_id, &page.ctx).await {
        Ok(()) => Ok(see_other("/account/security?notice=session_ended#sessions")),
        Err(error) => refused(&state, &page, "sessions", error).await,
    }
}

/// Every session ends, this one too: the visitor signs in again.
#[post("/account/security/sessions/end-all")]
async fn end_all(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<HttpResponse, PageError> {
    match state.app.sessions.revoke_all(&page.who, &page.ctx).await {
        Ok(_) => Ok(HttpResponse::SeeOther()
            .insert_header(("location", "/account/sign-in?notice=signed_out"))
            .cookie(removal(SESSION_COOKIE))
            .finish()),
        Err(error) => refused(&state, &page, "sessions", error).await,
    }
}
