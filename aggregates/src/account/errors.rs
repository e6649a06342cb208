use chrono::{DateTime, Utc};

use crate::shared::ErrorKind;

/// Refusals that leave no trace. A refusal that must be remembered (a wrong password) is an
/// event instead, because an `Err` discards every event of the command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("this account is already registered")]
    AlreadyRegistered,
    #[error("no such account")]
    NotRegistered,
    #[error("the account was erased")]
    Erased,
    #[error("the account is locked")]
    Locked { until: Option<DateTime<Utc>> },
    #[error("no such live session")]
    SessionNotFound,
    #[error("the password reset token is invalid, used or expired")]
    ResetTokenInvalid,
    #[error("a live API token of this account already has this name")]
    TokenNameTaken,
    #[error("no such live API token")]
    TokenNotFound,
    #[error("the expiry must be in the future")]
    ExpiryInPast,
    #[error("TOTP is already on; turn it off before enrolling again")]
    TotpAlreadyEnabled,
    #[error("no TOTP enrolment is waiting for confirmation")]
    NoPendingEnrolment,
    #[error("TOTP is not on for this account")]
    TotpNotEnabled,
    #[error("the code is wrong or no longer valid")]
    MfaCodeInvalid,
    #[error("the login challenge is unknown, used or expired; log in again")]
    ChallengeInvalid,
    #[error("no reporting PIN is set")]
    PinNotSet,
    #[error("too many wrong PINs; try again later")]
    PinLocked { until: DateTime<Utc> },
    #[error("no such open access request")]
    AccessRequestNotFound,
    #[error("emailed codes are already on")]
    EmailMfaAlreadyEnabled,
    #[error("emailed codes are not on for this account")]
    EmailMfaNotEnabled,
}

impl AccountError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyRegistered => ErrorKind::Conflict,
            Self::NotRegistered | Self::SessionNotFound | Self::Erased => ErrorKind::NotFound,
            Self::Locked { .. } | Self::PinLocked { .. } => ErrorKind::Locked,
            Self::PinNotSet => ErrorKind::Conflict,
            Self::ResetTokenInvalid | Self::ExpiryInPast | Self::MfaCodeInvalid => {
                ErrorKind::Invalid
            }
            Self::TotpAlreadyEnabled
            | Self::NoPendingEnrolment
            | Self::TotpNotEnabled
            | Self::EmailMfaAlreadyEnabled
            | Self::EmailMfaNotEnabled => ErrorKind::Conflict,
            Self::ChallengeInvalid => ErrorKind::Unauthenticated,
            Self::TokenNameTaken => ErrorKind::Conflict,
            Self::TokenNotFound | Self::AccessRequestNotFound => ErrorKind::NotFound,
        }
    }

    /// A stable slug that clients may match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyRegistered => "account_exists",
            Self::NotRegistered => "account_not_found",
            Self::Erased => "account_erased",
            Self::Locked { .. } => "account_locked",
            Self::SessionNotFound => "session_not_found",
            Self::ResetTokenInvalid => "reset_token_invalid",
            Self::TokenNameTaken => "token_name_taken",
            Self::TokenNotFound => "token_not_found",
            Self::ExpiryInPast => "expires_at_in_past",
            Self::TotpAlreadyEnabled => "totp_already_enabled",
            Self::NoPendingEnrolment => "no_pending_enrolment",
            Self::TotpNotEnabled => "totp_not_enabled",
            Self::MfaCodeInvalid => "mfa_code_invalid",
            Self::ChallengeInvalid => "challenge_invalid",
            Self::EmailMfaAlreadyEnabled => "email_mfa_already_enabled",
            Self::AccessRequestNotFound => "access_request_not_found",
            Self::PinNotSet => "pin_not_set",
            Self::PinLocked { .. } => "pin_locked",
            Self::EmailMfaNotEnabled => "email_mfa_not_enabled",
        }
    }
}
