use chrono::{DateTime, Utc};

/// Refusals that leave no trace. Each becomes one problem code at the edge (the server's
/// `ProblemCode`), where its status is chosen. A refusal that must be remembered (a wrong password) is an
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
    /// A wrong password at login while the account is locked: nothing is recorded, and the
    /// caller is told no more than for an unknown address.
    #[error("the email or password is wrong")]
    WrongPasswordWhileLocked,
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
    #[error("no enrollment is waiting for confirmation")]
    NoPendingEnrollment,
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
    #[error("the account has no password; set one through a password reset")]
    NoPassword,
    #[error("this identity provider is not linked to the account")]
    IdentityNotLinked,
    #[error("no link to this provider is waiting, or it expired; start again")]
    LinkInvalid,
    #[error("this identity provider is linked to the account already")]
    IdentityAlreadyLinked,
    #[error("unlinking it would leave the account with no way to sign in")]
    LastWayToSignIn,
    #[error("no such passkey")]
    PasskeyNotFound,
    #[error("no passkey registration is waiting, or it expired or was answered; start again")]
    PasskeyRegistrationInvalid,
    #[error("this passkey is registered already")]
    PasskeyAlreadyRegistered,
    #[error("no passkey ceremony is waiting for this answer, or it expired or was answered")]
    PasskeyCeremonyInvalid,
}
