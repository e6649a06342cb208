//! How an `AppError` goes out: an RFC 9457 `application/problem+json` document with the code's
//! status and title. The status of every problem comes from `ProblemCode`, and nowhere else.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::adapters::rate_limit::RateLimitInfo;
use crate::app::AppError;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type; stable per `code`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// What the problem is; the same for every occurrence of its `code`.
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable slug clients may match on, e.g. `invalid_credentials` (docs/problems.md).
    pub code: String,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let code = self.code();
        let detail = match self {
            Self::Internal(error) => {
                // The cause chain goes to the log; the client learns nothing internal.
                tracing::error!(error = format!("{error:#}"), "request failed");
                code.title().to_string()
            }
            other => other.to_string(),
        };
        let problem = Problem {
            problem_type: format!("urn:warden:problem:{code}"),
            title: code.title().to_string(),
            status: status.as_u16(),
            detail,
            code: code.to_string(),
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        let retry_after = match self {
            Self::Problem { retry_after, .. } => *retry_after,
            Self::RateLimited { retry_after, info } | Self::Throttled { retry_after, info } => {
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
        // Every 503 is worth a retry; say when, where nothing more precise is known.
        let retry_after = retry_after.or((status == StatusCode::SERVICE_UNAVAILABLE).then_some(1));
        if let Some(seconds) = retry_after {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        response.json(problem)
    }
}

/// The `RateLimit-*` headers of a token-authenticated response.
pub fn rate_limit_headers(
    info: &RateLimitInfo,
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
