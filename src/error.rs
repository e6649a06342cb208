//! The one error type handlers return, rendered as RFC 9457 `application/problem+json` with a
//! stable `code`. The HTTP status of every refusal is chosen in `status_of`, and nowhere else.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use warden_aggregates::account::AccountError;
use warden_aggregates::shared::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request broke a rule; nothing internal to hide.
    #[error("{detail}")]
    Rejected {
        kind: ErrorKind,
        code: &'static str,
        detail: String,
        retry_after: Option<u64>,
    },
    /// The request could not be read (malformed JSON, wrong content type, bad path).
    #[error("{detail}")]
    Malformed { code: &'static str, detail: String },
    /// An API token spent its requests for this minute.
    #[error("this API token is limited to {} requests a minute; retry in {retry_after} s", info.limit)]
    RateLimited {
        info: crate::rate_limit::RateLimitInfo,
        retry_after: u64,
    },
    /// The path exists, but not with this method.
    #[error("this path answers to {allowed} only")]
    MethodNotAllowed { allowed: String },
    /// A dependency is down or lagging; trying again later may work.
    #[error("{detail}")]
    Unavailable { code: &'static str, detail: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn rejected(kind: ErrorKind, code: &'static str, detail: impl Into<String>) -> Self {
        Self::Rejected {
            kind,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn invalid(code: &'static str, detail: impl Into<String>) -> Self {
        Self::rejected(ErrorKind::Invalid, code, detail)
    }

    pub fn unauthenticated() -> Self {
        Self::rejected(
            ErrorKind::Unauthenticated,
            "unauthenticated",
            "a valid bearer token is required",
        )
    }

    pub fn invalid_credentials() -> Self {
        Self::rejected(
            ErrorKind::Unauthenticated,
            "invalid_credentials",
            "the email or password is wrong",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::rejected(ErrorKind::NotFound, "not_found", detail)
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    /// A domain refusal, with `Retry-After` when a lock has an end.
    pub fn from_account(error: AccountError, now: DateTime<Utc>) -> Self {
        let retry_after = match &error {
            AccountError::Locked { until: Some(until) } | AccountError::PinLocked { until } => {
                Some((*until - now).num_seconds().max(1) as u64)
            }
            _ => None,
        };
        Self::Rejected {
            kind: error.kind(),
            code: error.code(),
            detail: error.to_string(),
            retry_after,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Rejected { code, .. }
            | Self::Malformed { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::RateLimited { .. } => "rate_limited",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Internal(_) => "internal_error",
        }
    }
}

fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Locked => StatusCode::LOCKED,
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type; stable per `code`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable slug clients may match on, e.g. `invalid_credentials`.
    pub code: String,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Rejected { kind, .. } => status_of(*kind),
            Self::Malformed { .. } => StatusCode::BAD_REQUEST,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = match self {
            Self::Internal(error) => {
                // The cause chain goes to the log; the client learns nothing internal.
                tracing::error!(error = format!("{error:#}"), "request failed");
                "an internal error occurred".to_string()
            }
            other => other.to_string(),
        };
        let problem = Problem {
            problem_type: format!("urn:warden:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            code: self.code().to_string(),
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        let retry_after = match self {
            Self::Rejected { retry_after, .. } => *retry_after,
            Self::RateLimited { retry_after, info } => {
                rate_limit_headers(info, |name, value| {
                    response.insert_header((name, value));
                });
                Some(*retry_after)
            }
            _ => None,
        };
        if let Self::MethodNotAllowed { allowed } = self {
            if let Ok(value) = HeaderValue::from_str(allowed) {
                response.insert_header((header::ALLOW, value));
            }
        }
        if let Some(seconds) = retry_after {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        response.json(problem)
    }
}

/// The `RateLimit-*` headers of a token-authenticated response.
pub fn rate_limit_headers(
    info: &crate::rate_limit::RateLimitInfo,
    mut insert: impl FnMut(header::HeaderName, HeaderValue),
) {
    insert(
        header::HeaderName::from_static("ratelimit-limit"),
        HeaderValue::from(info.limit),
    );
    insert(
        header::HeaderName::from_static("ratelimit-remaining"),
        HeaderValue::from(info.remaining),
    );
    insert(
        header::HeaderName::from_static("ratelimit-reset"),
        HeaderValue::from(info.reset_secs),
    );
}

/// The database is away (down, restarting, refusing connections, out of connections) rather
/// than refusing this request: worth a 503 and a retry, not a 500.
fn database_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // 08: connection exception; 57: operator intervention (shutdown, restart);
        // 53: insufficient resources (too many connections).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57") || c.starts_with("53")),
        _ => false,
    }
}

fn unavailable() -> AppError {
    AppError::Unavailable {
        code: "database_unavailable",
        detail: "the database is unavailable; try again shortly".into(),
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        if database_unavailable(&error) {
            tracing::warn!(%error, "database unavailable");
            unavailable()
        } else {
            Self::Internal(error.into())
        }
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(error: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match error {
            StoreError::Database(error) => error.into(),
            StoreError::Persistence(cqrs_es::persist::PersistenceError::ConnectionError(error)) => {
                tracing::warn!(%error, "database unavailable");
                unavailable()
            }
            StoreError::Contended(_) => Self::Unavailable {
                code: "contended",
                detail: "too many concurrent changes to this account; retry".into(),
            },
            StoreError::Persistence(cqrs_es::persist::PersistenceError::UnknownError(error))
                if error
                    .downcast_ref::<sqlx::Error>()
                    .is_some_and(database_unavailable) =>
            {
                tracing::warn!(%error, "database unavailable");
                unavailable()
            }
            other => Self::Internal(other.into()),
        }
    }
}
