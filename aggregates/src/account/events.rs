use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::identities::{LinkVia, ProviderSignIn};
use super::notices::Notice;
use crate::shared::{
    AccountId, PasswordHash, ProviderId, Scope, SealedText, SessionId, TokenHash, TokenId,
    WorkspaceId,
};

/// Every fact Warden records about an account. Type strings are stable and written by hand; a
/// payload change adds a new version and an upcaster, never an edit of stored events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    Registered {
        account_id: AccountId,
        email: SealedText,
        display_name: Option<SealedText>,
        password_hash: PasswordHash,
        at: DateTime<Utc>,
    },
    PasswordCheckFailed {
        purpose: PasswordCheckPurpose,
        consecutive_failures: u32,
        at: DateTime<Utc>,
    },
    /// `until: None` is a hard lock that only an administrator lifts.
    LockedOut {
        until: Option<DateTime<Utc>>,
        consecutive_failures: u32,
        at: DateTime<Utc>,
    },
    SessionStarted {
        session_id: SessionId,
        token_hash: TokenHash,
        device: Option<SealedText>,
        method: AuthMethod,
        started_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        idle_timeout_secs: i64,
        /// A workspace requires MFA and the account has none: this session may only enroll a
        /// factor. Stored as `enrolment_only`, the spelling of the first logs.
        #[serde(
            rename = "enrolment_only",
            default,
            skip_serializing_if = "std::ops::Not::not"
        )]
        enrollment_only: bool,
        /// The workspaces whose policy required MFA at this login (the decision's reason).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        required_by: Vec<WorkspaceId>,
        /// A sign-in through an identity provider: which one, and what it reported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sso: Option<ProviderSignIn>,
        /// A keyed hash of the device (not reversible without the master key), so the account
        /// knows the devices it signed in from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_hash: Option<String>,
        /// The account had signed in before, never from this device: the owner is told.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        new_device: bool,
    },
    SessionEnded {
        session_id: SessionId,
        reason: SessionEndReason,
        at: DateTime<Utc>,
    },
    PasswordChanged {
        password_hash: PasswordHash,
        via: PasswordChangeVia,
        at: DateTime<Utc>,
    },
    PasswordResetRequested {
        token_hash: TokenHash,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
        /// What the mail outbox derives the link from again (not a secret on its own); absent
        /// from requests whose mail was sent inline, before the outbox.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mail_nonce: Option<String>,
    },
    ApiTokenCreated {
        token_id: TokenId,
        name: String,
        token_hash: TokenHash,
        scopes: Vec<Scope>,
        expires_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    ApiTokenFirstUsed {
        token_id: TokenId,
        at: DateTime<Utc>,
    },
    /// Recorded once, when an expired token is first presented.
    ApiTokenExpired {
        token_id: TokenId,
        at: DateTime<Utc>,
    },
    /// At most one a minute per token, however many requests were refused.
    ApiTokenRateLimited {
        token_id: TokenId,
        at: DateTime<Utc>,
    },
    ApiTokenRevoked {
        token_id: TokenId,
        at: DateTime<Utc>,
    },
    /// A TOTP secret (sealed under the master key) and the hashes of fresh recovery codes,
    /// waiting for a first code to confirm them. A new enrollment replaces a pending one.
    /// Stored as `TotpEnrolmentStarted`, the spelling of the first logs.
    #[serde(rename = "TotpEnrolmentStarted")]
    TotpEnrollmentStarted {
        secret: SealedText,
        recovery_codes: Vec<String>,
        at: DateTime<Utc>,
    },
    /// MFA is on from here; `step` is the first accepted time step.
    TotpConfirmed {
        step: u64,
        at: DateTime<Utc>,
    },
    TotpDisabled {
        at: DateTime<Utc>,
    },
    RecoveryCodesReplaced {
        recovery_codes: Vec<String>,
        at: DateTime<Utc>,
    },
    /// The password step passed and a second factor is due.
    MfaChallengeIssued {
        challenge_hash: TokenHash,
        device: Option<SealedText>,
        methods: Vec<MfaMethod>,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        required_by: Vec<WorkspaceId>,
    },
    MfaCheckFailed {
        challenge_hash: Option<TokenHash>,
        method: MfaMethod,
        reason: MfaFailure,
        consecutive_failures: u32,
        at: DateTime<Utc>,
    },
    /// Too many consecutive second-factor failures: locked until an administrator unlocks.
    MfaLockedOut {
        consecutive_failures: u32,
        at: DateTime<Utc>,
    },
    /// A TOTP step was accepted; it and every earlier step are never accepted again.
    TotpStepAccepted {
        step: u64,
        at: DateTime<Utc>,
    },
    RecoveryCodeUsed {
        code_hash: String,
        remaining: u32,
        at: DateTime<Utc>,
    },
    MfaPassed {
        challenge_hash: TokenHash,
        method: MfaMethod,
        at: DateTime<Utc>,
    },
    AdminGranted {
        at: DateTime<Utc>,
    },
    /// A platform administrator made the account an auditor: it reads the audit trail, account
    /// histories and the chain, and does nothing else on others' behalf.
    AuditorGranted {
        by: AccountId,
        at: DateTime<Utc>,
    },
    AuditorRevoked {
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// The account's personal data was crypto-shredded (its data key destroyed); the account
    /// accepts nothing from here on.
    Erased {
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// A one-time code was mailed: to turn emailed codes on (`challenge_hash: None`) or for a
    /// login challenge. Only its keyed hash is kept.
    EmailCodeSent {
        challenge_hash: Option<TokenHash>,
        code_hash: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
        /// What the mail outbox derives the code from again, as for a reset link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mail_nonce: Option<String>,
    },
    /// A wrong code for turning emailed codes on.
    EmailCodeRejected {
        at: DateTime<Utc>,
    },
    EmailMfaEnabled {
        at: DateTime<Utc>,
    },
    /// The reporting PIN (argon2id) was set or replaced.
    PinSet {
        pin_hash: PasswordHash,
        at: DateTime<Utc>,
    },
    PinRemoved {
        at: DateTime<Utc>,
    },
    /// The PIN unlocked reporting history for one session until `unlocked_until`.
    PinVerified {
        session_id: SessionId,
        unlocked_until: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    PinCheckFailed {
        session_id: SessionId,
        consecutive_failures: u32,
        at: DateTime<Utc>,
    },
    /// Too many wrong PINs: verification refused until `until`.
    PinLocked {
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// A locked-out user asked support to unblock the account.
    AccessRequested {
        request_id: Uuid,
        reason: SealedText,
        at: DateTime<Utc>,
    },
    AccessRequestDecided {
        request_id: Uuid,
        approved: bool,
        by: AccountId,
        at: DateTime<Utc>,
    },
    EmailMfaDisabled {
        at: DateTime<Utc>,
    },
    Unlocked {
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// Support removed every second factor so the user can enroll again.
    MfaReset {
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// Created by a first sign-in through an identity provider: no password until the owner
    /// sets one through a reset.
    RegisteredThroughProvider {
        account_id: AccountId,
        email: SealedText,
        display_name: Option<SealedText>,
        at: DateTime<Utc>,
    },
    /// The re-authenticated owner started linking a provider; only the hash of the link code.
    IdentityLinkStarted {
        provider_id: ProviderId,
        link_hash: TokenHash,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    IdentityLinked {
        provider_id: ProviderId,
        issuer: String,
        subject: SealedText,
        via: LinkVia,
        at: DateTime<Utc>,
    },
    IdentityUnlinked {
        provider_id: ProviderId,
        at: DateTime<Utc>,
    },
    /// The owner chose which security notices to get: these are off, every other one is on.
    NoticesChanged {
        off: Vec<Notice>,
        at: DateTime<Utc>,
    },
    /// Re-authenticated, the owner asked for creation options: the ceremony's state,
    /// `ceremony`, sealed, which the registration must come back with before `expires_at`.
    PasskeyRegistrationStarted {
        ceremony: SealedText,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// `credential` is the verified public-key credential (JSON, not a secret).
    PasskeyRegistered {
        credential_id: String,
        passkey_name: SealedText,
        credential: String,
        counter: u32,
        backup_eligible: bool,
        backup_state: bool,
        transports: Vec<String>,
        at: DateTime<Utc>,
    },
    /// A verified assertion: the new signature counter and backup state.
    PasskeyUsed {
        credential_id: String,
        counter: u32,
        backup_state: bool,
        backup_state_changed: bool,
        credential: String,
        at: DateTime<Utc>,
    },
    /// Request options were given for re-authenticating with a passkey (`ceremony`, sealed).
    PasskeyReauthenticationRequested {
        ceremony: SealedText,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    PasskeyRenamed {
        credential_id: String,
        passkey_name: SealedText,
        at: DateTime<Utc>,
    },
    PasskeyRemoved {
        credential_id: String,
        at: DateTime<Utc>,
    },
    PasskeyRefused {
        credential_id: String,
        reason: PasskeyRefusal,
        at: DateTime<Utc>,
    },
    /// Request options for a passkey were given for an open login challenge.
    MfaPasskeyRequested {
        challenge_hash: TokenHash,
        ceremony: SealedText,
        at: DateTime<Utc>,
    },
}

impl AccountEvent {
    pub const REGISTERED: &'static str = "account.registered";
    pub const PASSWORD_CHECK_FAILED: &'static str = "account.password.check_failed";
    pub const LOCKED_OUT: &'static str = "account.locked_out";
    pub const SESSION_STARTED: &'static str = "account.session.started";
    pub const SESSION_ENDED: &'static str = "account.session.ended";
    pub const PASSWORD_CHANGED: &'static str = "account.password.changed";
    pub const PASSWORD_RESET_REQUESTED: &'static str = "account.password_reset.requested";
    pub const API_TOKEN_CREATED: &'static str = "account.api_token.created";
    pub const API_TOKEN_FIRST_USED: &'static str = "account.api_token.first_used";
    pub const API_TOKEN_EXPIRED: &'static str = "account.api_token.expired";
    pub const API_TOKEN_RATE_LIMITED: &'static str = "account.api_token.rate_limited";
    pub const API_TOKEN_REVOKED: &'static str = "account.api_token.revoked";
    pub const TOTP_ENROLLMENT_STARTED: &'static str = "account.totp.enrolment_started";
    pub const TOTP_CONFIRMED: &'static str = "account.totp.confirmed";
    pub const TOTP_DISABLED: &'static str = "account.totp.disabled";
    pub const RECOVERY_CODES_REPLACED: &'static str = "account.recovery_codes.replaced";
    pub const MFA_CHALLENGE_ISSUED: &'static str = "account.mfa.challenge_issued";
    pub const MFA_CHECK_FAILED: &'static str = "account.mfa.check_failed";
    pub const MFA_LOCKED_OUT: &'static str = "account.mfa.locked_out";
    pub const TOTP_STEP_ACCEPTED: &'static str = "account.totp.step_accepted";
    pub const RECOVERY_CODE_USED: &'static str = "account.recovery_code.used";
    pub const MFA_PASSED: &'static str = "account.mfa.passed";
    pub const ADMIN_GRANTED: &'static str = "account.admin.granted";
    pub const AUDITOR_GRANTED: &'static str = "account.auditor.granted";
    pub const AUDITOR_REVOKED: &'static str = "account.auditor.revoked";
    pub const ERASED: &'static str = "account.erased";
    pub const EMAIL_CODE_SENT: &'static str = "account.email_code.sent";
    pub const EMAIL_CODE_REJECTED: &'static str = "account.email_code.rejected";
    pub const EMAIL_MFA_ENABLED: &'static str = "account.email_mfa.enabled";
    pub const EMAIL_MFA_DISABLED: &'static str = "account.email_mfa.disabled";
    pub const ACCESS_REQUESTED: &'static str = "account.access.requested";
    pub const PIN_SET: &'static str = "account.pin.set";
    pub const PIN_REMOVED: &'static str = "account.pin.removed";
    pub const PIN_VERIFIED: &'static str = "account.pin.verified";
    pub const PIN_CHECK_FAILED: &'static str = "account.pin.check_failed";
    pub const PIN_LOCKED: &'static str = "account.pin.locked";
    pub const ACCESS_REQUEST_DECIDED: &'static str = "account.access.decided";
    pub const UNLOCKED: &'static str = "account.unlocked";
    pub const MFA_RESET: &'static str = "account.mfa.reset";
    pub const REGISTERED_THROUGH_PROVIDER: &'static str = "account.registered_through_provider";
    pub const IDENTITY_LINK_STARTED: &'static str = "account.identity.link_started";
    pub const IDENTITY_LINKED: &'static str = "account.identity.linked";
    pub const IDENTITY_UNLINKED: &'static str = "account.identity.unlinked";
    pub const NOTICES_CHANGED: &'static str = "account.notices.changed";
    pub const PASSKEY_REGISTRATION_STARTED: &'static str = "account.passkey.registration_started";
    pub const PASSKEY_REGISTERED: &'static str = "account.passkey.registered";
    pub const PASSKEY_USED: &'static str = "account.passkey.used";
    pub const PASSKEY_REAUTHENTICATION_REQUESTED: &'static str =
        "account.passkey.reauthentication_requested";
    pub const PASSKEY_RENAMED: &'static str = "account.passkey.renamed";
    pub const PASSKEY_REMOVED: &'static str = "account.passkey.removed";
    pub const PASSKEY_REFUSED: &'static str = "account.passkey.refused";
    pub const MFA_PASSKEY_REQUESTED: &'static str = "account.mfa.passkey_requested";

    /// A credential was checked and was wrong.
    pub const FAILED_CHECKS: &'static [&'static str] = &[
        Self::PASSWORD_CHECK_FAILED,
        Self::MFA_CHECK_FAILED,
        Self::PIN_CHECK_FAILED,
        Self::EMAIL_CODE_REJECTED,
        Self::PASSKEY_REFUSED,
    ];
    /// A lock or a limit now refuses what would otherwise be tried.
    pub const REFUSALS: &'static [&'static str] = &[
        Self::LOCKED_OUT,
        Self::MFA_LOCKED_OUT,
        Self::PIN_LOCKED,
        Self::API_TOKEN_RATE_LIMITED,
    ];
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Registered { .. } => Self::REGISTERED,
            Self::PasswordCheckFailed { .. } => Self::PASSWORD_CHECK_FAILED,
            Self::LockedOut { .. } => Self::LOCKED_OUT,
            Self::SessionStarted { .. } => Self::SESSION_STARTED,
            Self::SessionEnded { .. } => Self::SESSION_ENDED,
            Self::PasswordChanged { .. } => Self::PASSWORD_CHANGED,
            Self::PasswordResetRequested { .. } => Self::PASSWORD_RESET_REQUESTED,
            Self::ApiTokenCreated { .. } => Self::API_TOKEN_CREATED,
            Self::ApiTokenFirstUsed { .. } => Self::API_TOKEN_FIRST_USED,
            Self::ApiTokenExpired { .. } => Self::API_TOKEN_EXPIRED,
            Self::ApiTokenRateLimited { .. } => Self::API_TOKEN_RATE_LIMITED,
            Self::ApiTokenRevoked { .. } => Self::API_TOKEN_REVOKED,
            Self::TotpEnrollmentStarted { .. } => Self::TOTP_ENROLLMENT_STARTED,
            Self::TotpConfirmed { .. } => Self::TOTP_CONFIRMED,
            Self::TotpDisabled { .. } => Self::TOTP_DISABLED,
            Self::RecoveryCodesReplaced { .. } => Self::RECOVERY_CODES_REPLACED,
            Self::MfaChallengeIssued { .. } => Self::MFA_CHALLENGE_ISSUED,
            Self::MfaCheckFailed { .. } => Self::MFA_CHECK_FAILED,
            Self::MfaLockedOut { .. } => Self::MFA_LOCKED_OUT,
            Self::TotpStepAccepted { .. } => Self::TOTP_STEP_ACCEPTED,
            Self::RecoveryCodeUsed { .. } => Self::RECOVERY_CODE_USED,
            Self::MfaPassed { .. } => Self::MFA_PASSED,
            Self::AdminGranted { .. } => Self::ADMIN_GRANTED,
            Self::AuditorGranted { .. } => Self::AUDITOR_GRANTED,
            Self::AuditorRevoked { .. } => Self::AUDITOR_REVOKED,
            Self::Erased { .. } => Self::ERASED,
            Self::EmailCodeSent { .. } => Self::EMAIL_CODE_SENT,
            Self::EmailCodeRejected { .. } => Self::EMAIL_CODE_REJECTED,
            Self::EmailMfaEnabled { .. } => Self::EMAIL_MFA_ENABLED,
            Self::EmailMfaDisabled { .. } => Self::EMAIL_MFA_DISABLED,
            Self::AccessRequested { .. } => Self::ACCESS_REQUESTED,
            Self::PinSet { .. } => Self::PIN_SET,
            Self::PinRemoved { .. } => Self::PIN_REMOVED,
            Self::PinVerified { .. } => Self::PIN_VERIFIED,
            Self::PinCheckFailed { .. } => Self::PIN_CHECK_FAILED,
            Self::PinLocked { .. } => Self::PIN_LOCKED,
            Self::AccessRequestDecided { .. } => Self::ACCESS_REQUEST_DECIDED,
            Self::Unlocked { .. } => Self::UNLOCKED,
            Self::MfaReset { .. } => Self::MFA_RESET,
            Self::RegisteredThroughProvider { .. } => Self::REGISTERED_THROUGH_PROVIDER,
            Self::IdentityLinkStarted { .. } => Self::IDENTITY_LINK_STARTED,
            Self::IdentityLinked { .. } => Self::IDENTITY_LINKED,
            Self::IdentityUnlinked { .. } => Self::IDENTITY_UNLINKED,
            Self::NoticesChanged { .. } => Self::NOTICES_CHANGED,
            Self::PasskeyRegistrationStarted { .. } => Self::PASSKEY_REGISTRATION_STARTED,
            Self::PasskeyRegistered { .. } => Self::PASSKEY_REGISTERED,
            Self::PasskeyUsed { .. } => Self::PASSKEY_USED,
            Self::PasskeyReauthenticationRequested { .. } => {
                Self::PASSKEY_REAUTHENTICATION_REQUESTED
            }
            Self::PasskeyRenamed { .. } => Self::PASSKEY_RENAMED,
            Self::PasskeyRemoved { .. } => Self::PASSKEY_REMOVED,
            Self::PasskeyRefused { .. } => Self::PASSKEY_REFUSED,
            Self::MfaPasskeyRequested { .. } => Self::MFA_PASSKEY_REQUESTED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordCheckPurpose {
    Login,
    Reauthentication,
}

/// How a session was authenticated. Sign-ins through an identity provider skip the MFA step
/// because the provider is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Password,
    /// Password, then a TOTP code.
    Totp,
    /// Password, then a recovery code.
    RecoveryCode,
    /// Password, then an emailed code. Stored as `email_code`.
    #[serde(rename = "email_code")]
    Email,
    /// Through an OpenID Connect provider.
    Sso,
    /// Password, then a passkey.
    PasswordAndPasskey,
    /// A passkey alone, with user verification: multi-factor on its own.
    Passkey,
}

impl AuthMethod {
    /// A password login that then passed `factor`.
    pub fn after_second_factor(factor: MfaMethod) -> Self {
        match factor {
            MfaMethod::Totp => Self::Totp,
            MfaMethod::Email => Self::Email,
            MfaMethod::RecoveryCode => Self::RecoveryCode,
            MfaMethod::Passkey => Self::PasswordAndPasskey,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Email => "email",
            Self::Sso => "sso",
            Self::PasswordAndPasskey => "password_and_passkey",
            Self::Passkey => "passkey",
        }
    }
}

/// A second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaMethod {
    Totp,
    Email,
    RecoveryCode,
    Passkey,
}

impl MfaMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Email => "email",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
        }
    }
}

/// Why a passkey's assertion was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasskeyRefusal {
    /// The signature counter did not grow: the authenticator may have been cloned.
    CounterWentBackwards,
    /// The authenticator did not verify its user (PIN, biometrics).
    UserNotVerified,
    /// Not one of this account's passkeys.
    UnknownCredential,
    /// The signature, challenge, origin or relying party did not check out.
    InvalidAssertion,
}

/// Why a second-factor check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaFailure {
    WrongCode,
    /// The TOTP code was right but its time step had been used already.
    Replayed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEndReason {
    LoggedOut,
    Revoked,
    RevokedAll,
    PasswordChanged,
    PasswordReset,
    Expired,
    /// A workspace began to require MFA and the session had not passed it.
    MfaPolicy,
    /// The identity provider ended its session (back-channel logout).
    ProviderLogout,
}

impl SessionEndReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::LoggedOut => "logged_out",
            Self::Revoked => "revoked",
            Self::RevokedAll => "revoked_all",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::Expired => "expired",
            Self::MfaPolicy => "mfa_policy",
            Self::ProviderLogout => "provider_logout",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordChangeVia {
    Change,
    Reset,
}
