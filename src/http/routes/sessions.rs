use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use warden_aggregates::account::MfaMethod;
use warden_aggregates::shared::SessionId;

use crate::app::sessions::{LoggedIn, LoginOutcome};
use crate::app::{AppError, Personal, ProblemCode};
use crate::app::{Authenticated, RequestContext};
use crate::http::error::Problem;
use crate::http::routes::account::optional_name;
use crate::startup::AppState;

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String)]
    pub password: SecretString,
    /// A name the user gives this device, shown in the session list.
    pub device_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionSummary {
    pub id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Tells the two answers of the password step apart.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticatedStatus {
    Authenticated,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaRequiredStatus {
    MfaRequired,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentRequiredStatus {
    MfaEnrollmentRequired,
}

/// A workspace requires MFA and the account has none: this session may only enroll a factor,
/// read `GET /v1/me` and log out.
#[derive(Serialize, ToSchema)]
pub struct EnrollmentRequiredResponse {
    pub status: EnrollmentRequiredStatus,
    /// A restricted session token (`wss_…`).
    pub token: String,
    pub session: SessionSummary,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub status: AuthenticatedStatus,
    /// The session token (`wss_…`), shown only here.
    pub token: String,
    pub session: SessionSummary,
}

/// Log in with email and password.
#[utoipa::path(
    tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 201, body = LoginResponse),
        (status = 200, description = "a second factor is due (`mfa_required`), or a workspace requires one and the account must enroll first (`mfa_enrollment_required`)", body = inline(LoginStep)),
        (status = 401, description = "invalid_credentials", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "device_name_too_long", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "account_locked: with Retry-After while the lock has an end", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too_many_attempts: with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/sessions")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn log_in(
    state: web::Data<AppState>,
    ctx: RequestContext,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let device = optional_name(body.device_name, ProblemCode::DeviceNameTooLong)?;
    let outcome = state
        .app
        .sessions
        .log_in(&body.email, body.password, device, &ctx)
        .await?;
    Ok(match outcome {
        LoginOutcome::Authenticated(logged_in) => {
            HttpResponse::Created().json(authenticated(logged_in))
        }
        LoginOutcome::EnrollmentRequired(logged_in) => {
            HttpResponse::Ok().json(EnrollmentRequiredResponse {
                status: EnrollmentRequiredStatus::MfaEnrollmentRequired,
                token: logged_in.token.expose_secret().to_string(),
                session: SessionSummary {
                    id: logged_in.session_id.0,
                    expires_at: logged_in.expires_at,
                },
            })
        }
        LoginOutcome::MfaRequired {
            challenge,
            methods,
            expires_at,
        } => HttpResponse::Ok().json(MfaRequiredResponse {
            status: MfaRequiredStatus::MfaRequired,
            challenge: challenge.expose_secret().to_string(),
            methods: methods.into_iter().map(MfaMethodName::from).collect(),
            expires_at,
        }),
    })
}

pub fn authenticated(logged_in: LoggedIn) -> LoginResponse {
    LoginResponse {
        status: AuthenticatedStatus::Authenticated,
        token: logged_in.token.expose_secret().to_string(),
        session: SessionSummary {
            id: logged_in.session_id.0,
            expires_at: logged_in.expires_at,
        },
    }
}

/// The non-final answers of the password step.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginStep {
    MfaRequired(MfaRequiredResponse),
    EnrollmentRequired(EnrollmentRequiredResponse),
}

/// A second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaMethodName {
    Totp,
    Email,
    RecoveryCode,
    Passkey,
}

impl From<MfaMethod> for MfaMethodName {
    fn from(value: MfaMethod) -> Self {
        match value {
            MfaMethod::Totp => Self::Totp,
            MfaMethod::Email => Self::Email,
            MfaMethod::RecoveryCode => Self::RecoveryCode,
            MfaMethod::Passkey => Self::Passkey,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MfaRequiredResponse {
    pub status: MfaRequiredStatus,
    /// Presented with a code to `POST /v1/sessions/mfa`; valid 5 minutes, 5 wrong codes.
    pub challenge: String,
    pub methods: Vec<MfaMethodName>,
    pub expires_at: DateTime<Utc>,
}

/// Log out of this session.
#[utoipa::path(
    tag = "sessions",
    security(("session" = [])),
    responses(
        (status = 204, description = "logged out"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/sessions/current")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn log_out(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
) -> Result<HttpResponse, AppError> {
    state.app.sessions.log_out(&who, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub device: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(example = "password")]
    pub method: String,
    /// A sign-in through an identity provider: which one, its issuer, and how it says it
    /// authenticated the person (`amr`, `acr`).
    pub provider: Option<SessionProvider>,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `logged_out`, `revoked`, `revoked_all`, `password_changed`, `password_reset`, `expired`
    /// or `idle_timeout`.
    pub end_reason: Option<String>,
    /// True on the session making this request.
    pub current: bool,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionProvider {
    pub provider_id: Uuid,
    pub issuer: String,
    #[serde(default)]
    pub amr: Vec<String>,
    pub acr: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FailedAttemptView {
    pub at: DateTime<Utc>,
    /// `login` or `reauthentication`.
    pub purpose: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionsResponse {
    /// Current and ended sessions, newest first.
    pub sessions: Vec<SessionView>,
    /// Failed password attempts, newest first.
    pub failed_attempts: Vec<FailedAttemptView>,
}

/// Login history: sessions and failed attempts.
#[utoipa::path(
    tag = "sessions",
    security(("session" = [])),
    responses(
        (status = 200, body = SessionsResponse),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me/sessions")]
#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, AppError> {
    let (sessions, failures) = state.app.sessions.list(&who).await?;
    Ok(HttpResponse::Ok().json(SessionsResponse {
        sessions: sessions
            .into_iter()
            .map(|s| SessionView {
                id: s.id,
                device: s.device.map(Personal::into_text),
                ip: s.ip.map(Personal::into_text),
                user_agent: s.user_agent.map(Personal::into_text),
                method: s.method,
                provider: s.provider.and_then(|p| serde_json::from_value(p).ok()),
                started_at: s.started_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                ended_at: s.ended_at,
                end_reason: s.end_reason,
                current: s.current,
            })
            .collect(),
        failed_attempts: failures
            .into_iter()
            .map(|f| FailedAttemptView {
                at: f.at,
                purpose: f.purpose,
                ip: f.ip.map(Personal::into_text),
                user_agent: f.user_agent.map(Personal::into_text),
            })
            .collect(),
    }))
}

/// End one of the caller's sessions.
#[utoipa::path(
    tag = "sessions",
    security(("session" = [])),
    params(("id" = Uuid, Path, description = "session id")),
    responses(
        (status = 204, description = "ended"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "session_not_found", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/sessions/{id}")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn end(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, AppError> {
    let session_id = SessionId(path.into_inner());
    state
        .app
        .sessions
        .end_session(&who, session_id, &ctx)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct RevokeAllResponse {
    /// How many sessions ended, the caller's included.
    pub revoked: usize,
}

/// Log out of all devices, this one included.
#[utoipa::path(
    tag = "sessions",
    security(("session" = [])),
    responses(
        (status = 200, body = RevokeAllResponse),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/sessions/revoke-all")]
#[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
pub async fn revoke_all(
    state: web::Data<AppState>,
    who: Authenticated,
    ctx: RequestContext,
) -> Result<HttpResponse, AppError> {
    let revoked = state.app.sessions.revoke_all(&who, &ctx).await?;
    Ok(HttpResponse::Ok().json(RevokeAllResponse { revoked }))
}
