//! The one error every use case answers with, and the one mapping from domain refusals, store
//! failures and database outages to problem codes. The HTTP layer only renders it.

use chrono::{DateTime, Utc};
use warden_aggregates::account::AccountError;
use warden_aggregates::identity_provider::IdentityProviderError;
use warden_aggregates::workspace::WorkspaceError;

use super::problem::ProblemCode;
use crate::adapters::rate_limit::RateLimitInfo;
use crate::adapters::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request broke a rule, could not be read, or met an outage worth retrying.
    #[error("{detail}")]
    Problem {
        code: ProblemCode,
        detail: String,
        retry_after: Option<u64>,
    },
    /// An API token spent its requests for this minute.
    #[error("this API token is limited to {} requests a minute; retry in {retry_after} s", info.limit)]
    RateLimited {
        info: RateLimitInfo,
        retry_after: u64,
    },
    /// A client address spent its unauthenticated attempts (`ClientThrottle`).
    #[error("too many attempts from this client; retry in {retry_after} s")]
    Throttled {
        info: RateLimitInfo,
        retry_after: u64,
    },
    /// The path exists, but not with this method.
    #[error("this path answers to {allowed} only")]
    MethodNotAllowed { allowed: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// A problem whose detail is its title.
    pub fn new(code: ProblemCode) -> Self {
        Self::with(code, code.title())
    }

    pub fn with(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::Problem {
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(ProblemCode::Unauthenticated)
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    pub fn code(&self) -> ProblemCode {
        match self {
            Self::Problem { code, .. } => *code,
            Self::RateLimited { .. } => ProblemCode::RateLimited,
            Self::Throttled { .. } => ProblemCode::TooManyAttempts,
            Self::MethodNotAllowed { .. } => ProblemCode::MethodNotAllowed,
            Self::Internal(_) => ProblemCode::InternalError,
        }
    }
}

/// A domain refusal as a problem; `now` turns a lock's end into `Retry-After`.
pub trait Refusal: std::error::Error {
    fn problem_code(&self) -> ProblemCode;

    fn retry_after(&self, _now: DateTime<Utc>) -> Option<u64> {
        None
    }

    fn to_problem(&self, now: DateTime<Utc>) -> AppError {
        AppError::Problem {
            code: self.problem_code(),
            detail: self.to_string(),
            retry_after: self.retry_after(now),
        }
    }
}

impl Refusal for AccountError {
    fn problem_code(&self) -> ProblemCode {
        match self {
            Self::AlreadyRegistered => ProblemCode::EmailTaken,
            Self::NotRegistered => ProblemCode::AccountNotFound,
            Self::Erased => ProblemCode::AccountErased,
            Self::Locked { .. } => ProblemCode::AccountLocked,
            Self::WrongPasswordWhileLocked => ProblemCode::InvalidCredentials,
            Self::SessionNotFound => ProblemCode::SessionNotFound,
            Self::ResetTokenInvalid => ProblemCode::ResetTokenInvalid,
            Self::TokenNameTaken => ProblemCode::TokenNameTaken,
            Self::TokenNotFound => ProblemCode::TokenNotFound,
            Self::ExpiryInPast => ProblemCode::ExpiresAtInPast,
            Self::TotpAlreadyEnabled => ProblemCode::TotpAlreadyEnabled,
            Self::NoPendingEnrollment => ProblemCode::NoPendingEnrollment,
            Self::TotpNotEnabled => ProblemCode::TotpNotEnabled,
            Self::MfaCodeInvalid => ProblemCode::ConfirmationCodeInvalid,
            Self::ChallengeInvalid => ProblemCode::ChallengeInvalid,
            Self::PinNotSet => ProblemCode::PinNotSet,
            Self::PinLocked { .. } => ProblemCode::PinLocked,
            Self::AccessRequestNotFound => ProblemCode::AccessRequestNotFound,
            Self::EmailMfaAlreadyEnabled => ProblemCode::EmailMfaAlreadyEnabled,
            Self::EmailMfaNotEnabled => ProblemCode::EmailMfaNotEnabled,
            Self::NoPassword => ProblemCode::PasswordNotSet,
            Self::IdentityNotLinked => ProblemCode::IdentityNotFound,
            Self::IdentityAlreadyLinked => ProblemCode::IdentityAlreadyLinked,
            Self::LinkInvalid => ProblemCode::SsoAttemptInvalid,
            Self::LastWayToSignIn => ProblemCode::LastWayToSignIn,
            Self::PasskeyNotFound => ProblemCode::PasskeyNotFound,
            Self::PasskeyRegistrationInvalid => ProblemCode::PasskeyRegistrationInvalid,
            Self::PasskeyAlreadyRegistered => ProblemCode::PasskeyExists,
            Self::PasskeyCeremonyInvalid => ProblemCode::PasskeyCeremonyInvalid,
        }
    }

    fn retry_after(&self, now: DateTime<Utc>) -> Option<u64> {
        match self {
            Self::Locked { until: Some(until) } | Self::PinLocked { until } => {
                Some((*until - now).num_seconds().max(1) as u64)
            }
            _ => None,
        }
    }
}

impl Refusal for IdentityProviderError {
    fn problem_code(&self) -> ProblemCode {
        match self {
            Self::NotFound => ProblemCode::IdentityProviderNotFound,
            Self::AlreadyConfigured => ProblemCode::InvalidIdentityProvider,
            Self::WorkspaceProviderTooBroad => ProblemCode::WorkspaceProviderTooBroad,
        }
    }
}

impl Refusal for WorkspaceError {
    fn problem_code(&self) -> ProblemCode {
        match self {
            Self::NotFound => ProblemCode::WorkspaceNotFound,
            Self::AlreadyCreated => ProblemCode::WorkspaceExists,
            Self::AccountHolderRequired => ProblemCode::AccountHolderRequired,
            Self::AlreadyMember => ProblemCode::AlreadyMember,
            Self::MemberNotFound => ProblemCode::MemberNotFound,
            Self::LastAccountHolder => ProblemCode::LastAccountHolder,
            Self::ArchivalOff => ProblemCode::ArchivalOff,
            Self::ArchivalDaysOutOfRange => ProblemCode::ArchivalDaysOutOfRange,
            Self::CutoffInFuture => ProblemCode::CutoffInFuture,
        }
    }
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
        // What a connection closed during its handshake reads as (the server went away, or
        // something between refused it): the connection is broken, not the request.
        sqlx::Error::Protocol(_) => true,
        // 08: connection exception; 57: operator intervention (shutdown, restart);
        // 53: insufficient resources (too many connections).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57") || c.starts_with("53")),
        _ => false,
    }
}

fn unavailable(error: &dyn std::fmt::Display) -> AppError {
    tracing::warn!(%error, "database unavailable");
    AppError::new(ProblemCode::DatabaseUnavailable)
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        if database_unavailable(&error) {
            unavailable(&error)
        } else {
            Self::Internal(error.into())
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        use cqrs_es::persist::PersistenceError;
        match error {
            StoreError::Database(error) => error.into(),
            StoreError::Persistence(PersistenceError::ConnectionError(error)) => {
                unavailable(&error)
            }
            StoreError::Persistence(PersistenceError::UnknownError(error))
                if error
                    .downcast_ref::<sqlx::Error>()
                    .is_some_and(database_unavailable) =>
            {
                unavailable(&error)
            }
            StoreError::Contended(_) => Self::new(ProblemCode::Contended),
            other => Self::Internal(other.into()),
        }
    }
}
