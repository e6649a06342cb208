//! "Security settings": everything a person does about their own account's security, on one
//! page; each form posts to the handler of its concern (factors, devices, tokens) and comes
//! back here with a notice, or with its refusal beside the field it concerns.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use maud::{html, Markup};
use secrecy::SecretString;
use serde::Deserialize;
use warden_aggregates::account::MfaMethod;

use super::guard::{Posted, SignedIn};
use super::layout::{alert, csrf_field, notice, page, when, Field, Frame, PASSWORD_RULES};
use super::{devices, factors, html as answer, ok, refusal, see_other, tokens, PageError};
use crate::app::accounts::Profile;
use crate::app::api_tokens::TokenEntry;
use crate::app::passkeys::PasskeyView;
use crate::app::pin::PinStatus;
use crate::app::sessions::{FailedAttempt, SessionEntry};
use crate::app::sso::IdentityEntry;
use crate::app::{App, AppError, Authenticated, ProblemCode};
use crate::startup::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(settings_page).service(change_password);
    factors::routes(cfg);
    devices::routes(cfg);
    tokens::routes(cfg);
}

/// What the settings page shows. An enrollment-only session sees its profile and factors only.
pub struct Settings {
    pub enrollment_only: bool,
    /// Passkeys are on (Warden's public URL names a domain).
    pub passkeys_on: bool,
    pub profile: Arc<Profile>,
    pub passkeys: Vec<PasskeyView>,
    pub sessions: Vec<SessionEntry>,
    pub failures: Vec<FailedAttempt>,
    pub tokens: Vec<TokenEntry>,
    pub pin: Option<PinStatus>,
    /// Identity providers linked to the account.
    pub identities: Vec<IdentityEntry>,
}

impl Settings {
    pub async fn load(app: &App, who: &Authenticated) -> Result<Self, AppError> {
        let profile = app.accounts.profile(who).await?;
        let passkeys = app.passkeys.list(who).await?;
        if who.enrollment_only {
            return Ok(Self {
                enrollment_only: true,
                passkeys_on: app.passkeys.enabled(),
                profile,
                passkeys,
                sessions: Vec::new(),
                failures: Vec::new(),
                tokens: Vec::new(),
                pin: None,
                identities: Vec::new(),
            });
        }
        let (sessions, failures) = app.sessions.list(who).await?;
        Ok(Self {
            enrollment_only: false,
            passkeys_on: app.passkeys.enabled(),
            profile,
            passkeys,
            sessions,
            failures,
            tokens: app.api_tokens.list(who).await?,
            pin: Some(app.pin.status(who).await?),
            identities: app.sso.identities(who).await?,
        })
    }

    pub fn has(&self, method: MfaMethod) -> bool {
        self.profile.mfa_methods.contains(&method)
    }
}

/// A refused form: which form, which field, in the problem's words.
pub struct FormError {
    pub form: &'static str,
    pub field: &'static str,
    pub message: String,
}

/// What one section needs to draw itself.
pub struct Section<'a> {
    pub csrf: &'a str,
    pub settings: &'a Settings,
    pub error: Option<&'a FormError>,
    pub admin: bool,
}

impl Section<'_> {
    /// The refusal for `field` of `form`, if that is what was refused.
    pub fn error(&self, form: &str, field: &str) -> Option<&str> {
        self.error
            .filter(|e| e.form == form && e.field == field)
            .map(|e| e.message.as_str())
    }
}

/// The field of a form a problem concerns ("" for the form as a whole).
fn field_of(code: ProblemCode) -> &'static str {
    match code {
        ProblemCode::CurrentPasswordInvalid => "current_password",
        ProblemCode::PasswordTooShort
        | ProblemCode::PasswordTooLong
        | ProblemCode::PasswordTooCommon => "new_password",
        ProblemCode::PasswordInvalid
        | ProblemCode::ReauthenticationFailed
        | ProblemCode::ReauthenticationRequired => "password",
        ProblemCode::InvalidPin | ProblemCode::PinInvalid | ProblemCode::PinLocked => "pin",
        ProblemCode::InvalidTokenName | ProblemCode::TokenNameTaken => "name",
        ProblemCode::ExpiresAtInPast => "expires_at",
        ProblemCode::ConfirmationCodeInvalid
        | ProblemCode::MfaCodeInvalid
        | ProblemCode::InvalidCodeFormat => "code",
        _ => "",
    }
}

/// The settings page again, with `form`'s refusal shown beside its field.
pub async fn refused(
    state: &AppState,
    page: &SignedIn,
    form: &'static str,
    error: AppError,
) -> Result<HttpResponse, PageError> {
    let field = field_of(error.code());
    let (status, message) = refusal(error)?;
    let error = FormError {
        form,
        field,
        message,
    };
    render(state, page, None, Some(&error), status).await
}

async fn render(
    state: &AppState,
    page: &SignedIn,
    notice_slug: Option<&str>,
    error: Option<&FormError>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let settings = Settings::load(&state.app, &page.who).await?;
    let section = Section {
        csrf: &page.csrf.token,
        settings: &settings,
        error,
        admin: settings.profile.is_admin,
    };
    let markup = settings_markup(&section, notice_slug);
    Ok(answer(&page.csrf, status, markup))
}

#[derive(Deserialize)]
struct NoticeQuery {
    notice: Option<String>,
}

#[get("/account/security")]
async fn settings_page(
    state: web::Data<AppState>,
    page: SignedIn,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    render(&state, &page, query.notice.as_deref(), None, StatusCode::OK).await
}

/// The messages a `?notice=` names on this page; nothing a visitor types is echoed.
fn notice_text(slug: Option<&str>) -> Option<&'static str> {
    Some(match slug? {
        "enroll" => {
            "A workspace you belong to requires a second factor. Set one up below to continue."
        }
        "password_changed" => "Your password is changed. Every other session ended.",
        "totp_on" => "Your authenticator app is set up.",
        "totp_off" => "Your authenticator app no longer signs you in.",
        "email_on" => "Emailed codes are on.",
        "email_off" => "Emailed codes are off.",
        "passkey_added" => "Your passkey is added.",
        "passkey_renamed" => "Your passkey is renamed.",
        "passkey_removed" => "Your passkey is removed.",
        "session_ended" => "That session is signed out.",
        "token_revoked" => "The API token is revoked.",
        "provider_unlinked" => "The provider no longer signs you in.",
        "pin_set" => "Your reporting PIN is set.",
        "pin_removed" => "Your reporting PIN is removed.",
        "pin_verified" => "Reporting history is unlocked for this session.",
        _ => return None,
    })
}

fn settings_markup(section: &Section<'_>, notice_slug: Option<&str>) -> Markup {
    let settings = section.settings;
    let enrolling = settings.enrollment_only;
    let frame = Frame {
        title: "Security settings",
        csrf: section.csrf,
        signed_in: true,
        script: true,
    };
    page(
        &frame,
        html! {
            (notice(notice_text(notice_slug)))
            @if enrolling {
                p.notice role="status" { "A workspace you belong to requires a second factor: set up an authenticator app, emailed codes or a passkey below." }
            }
            p.who { "Signed in as " strong { (settings.profile.email.text()) } }
            @if settings.profile.is_auditor || settings.profile.is_admin {
                p { "You may read the platform's audit trail: " a href="/account/audit" { "open the audit pages" } "." }
            }
            @if !enrolling {
                (password_section(section))
                (devices::providers_section(section))
            }
            (factors::section(section))
            @if !enrolling {
                (devices::section(section))
                (tokens::section(section))
                (tokens::pin_section(section))
            }
        },
    )
}

fn password_section(section: &Section<'_>) -> Markup {
    let form = "password";
    html! {
        section id="password" aria-labelledby="password-title" {
            h2 id="password-title" { "Password" }
            (alert(section.error(form, "")))
            form method="post" action="/account/security/password" novalidate {
                (csrf_field(section.csrf))
                (Field::new("current_password", "Current password", "password", "current-password").error(section.error(form, "current_password")).render())
                (Field::new("new_password", "New password", "password", "new-password").hint(PASSWORD_RULES).error(section.error(form, "new_password")).render())
                button type="submit" { "Change password" }
            }
        }
    }
}

#[derive(Deserialize)]
struct PasswordChange {
    current_password: SecretString,
    new_password: SecretString,
}

#[post("/account/security/password")]
async fn change_password(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(form): Posted<PasswordChange>,
) -> Result<HttpResponse, PageError> {
    let accounts = &state.app.accounts;
    match accounts
        .change_password(
            &page.who,
            form.current_password,
            form.new_password,
            &page.ctx,
        )
        .await
    {
        Ok(()) => Ok(see_other("/account/security?notice=password_changed")),
        Err(error) => refused(&state, &page, "password", error).await,
    }
}

/// A time, or a dash for none.
pub fn maybe_when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(when).unwrap_or_else(|| "—".to_string())
}

/// Pages that show a secret once render through here: a page of their own, no notice.
pub fn shown_once(page: &SignedIn, title: &str, body: Markup) -> HttpResponse {
    let frame = Frame {
        title,
        csrf: &page.csrf.token,
        signed_in: true,
        script: true,
    };
    ok(&page.csrf, super::layout::page(&frame, body))
}
