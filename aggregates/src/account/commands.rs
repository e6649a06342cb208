//! What a caller may ask of an account, grouped by the part of the account that decides it.
//! Values are already parsed and, where they are personal data, already sealed: parsing and
//! sealing happen once, at the edge.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::events::{AuthMethod, PasskeyRefusal, SessionEndReason};
use super::identities::{LinkVia, ProviderSignIn};
use super::notices::Notice;
use crate::shared::{AccountId, PasswordHash, Scope, SealedText, SessionId, TokenHash, TokenId};
use crate::shared::{ProviderId, TotpCode, WorkspaceId};

#[derive(Debug)]
pub enum AccountCommand {
    Register {
        account_id: AccountId,
        email: SealedText,
        display_name: Option<SealedText>,
        password_hash: PasswordHash,
    },
    Password(PasswordCommand),
    Session(SessionCommand),
    Mfa(MfaCommand),
    ApiToken(ApiTokenCommand),
    Pin(PinCommand),
    Support(SupportCommand),
    Identity(IdentityCommand),
    Passkey(PasskeyCommand),
    /// Exactly these security notices off, every other one on.
    SetNotices {
        off: std::collections::BTreeSet<Notice>,
    },
}

/// Identities at OpenID Connect providers.
#[derive(Debug)]
pub enum IdentityCommand {
    /// The first sign-in through a provider that may create accounts.
    Register(ProviderRegistration),
    /// A sign-in the provider vouched for; `link` links the identity first where the provider's
    /// rules allow it (a verified address).
    LogIn {
        session: NewSession,
        link: Option<NewIdentity>,
    },
    /// The signed-in owner, re-authenticated, starts linking a provider from their settings; the
    /// sign-in at the provider must come back with the code whose hash this is.
    StartLink {
        provider_id: ProviderId,
        link_hash: TokenHash,
        expires_at: DateTime<Utc>,
        proof: Reauthentication,
    },
    /// The provider sign-in a started link was waiting for.
    Link {
        identity: NewIdentity,
        link_hash: TokenHash,
    },
    Unlink {
        provider_id: ProviderId,
    },
    /// The provider ended its session (back-channel logout): every session of this provider, or
    /// only those of the provider session `sid`.
    EndProviderSessions {
        provider_id: ProviderId,
        sid: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct ProviderRegistration {
    pub account_id: AccountId,
    pub email: SealedText,
    pub display_name: Option<SealedText>,
    pub identity: NewIdentity,
}

/// An identity the edge has verified (the ID token) and sealed (the subject).
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub provider_id: ProviderId,
    pub issuer: String,
    pub subject: SealedText,
    pub via: LinkVia,
}

/// The password and its recovery by mail.
#[derive(Debug)]
pub enum PasswordCommand {
    Change {
        current_password: SecretString,
        new_password_hash: PasswordHash,
        /// The session the change was made from stays; every other one ends.
        keep_session: Option<SessionId>,
    },
    RequestReset {
        token_hash: TokenHash,
        expires_at: DateTime<Utc>,
        /// The link is derived from it again when the mail is sent.
        mail_nonce: String,
    },
    Reset {
        token_hash: TokenHash,
        new_password_hash: PasswordHash,
    },
}

/// Logging in and out.
#[derive(Debug)]
pub enum SessionCommand {
    /// The password step of a login. A wrong password is recorded, not refused with an error.
    /// With a second factor on, a challenge (identified by `challenge_hash`) is issued instead of
    /// a session.
    LogIn {
        password: SecretString,
        session: NewSession,
        challenge_hash: TokenHash,
        /// Workspaces of this account that require MFA (read from their policy).
        mfa_required_by: Vec<WorkspaceId>,
    },
    End {
        session_id: SessionId,
        reason: SessionEndReason,
    },
    /// Ends every live session.
    EndAll { reason: SessionEndReason },
    /// Ends the full sessions started by `started_by` that did not pass a second factor (a
    /// workspace began to require one then; later logins were decided under the policy).
    EndWithoutMfa { started_by: DateTime<Utc> },
}

/// Second factors: TOTP, recovery codes, emailed codes and the login challenge.
#[derive(Debug)]
pub enum MfaCommand {
    /// The second step of a login against an open challenge.
    Complete {
        challenge_hash: TokenHash,
        proof: MfaProof,
        session: NewSession,
    },
    StartTotpEnrollment {
        secret: SealedText,
        recovery_code_hashes: Vec<String>,
    },
    ConfirmTotp {
        code: TotpCode,
    },
    /// Re-authenticated by the password or a current TOTP code.
    DisableTotp {
        proof: Reauthentication,
    },
    ReplaceRecoveryCodes {
        code: TotpCode,
        recovery_code_hashes: Vec<String>,
    },
    /// Mails a code: for turning emailed codes on (no challenge) or for a login challenge.
    SendEmailCode {
        challenge_hash: Option<TokenHash>,
        code_hash: String,
        expires_at: DateTime<Utc>,
        /// The code is derived from it again when the mail is sent.
        mail_nonce: String,
    },
    ConfirmEmail {
        code_hash: String,
    },
    DisableEmail {
        password: SecretString,
    },
    /// Request options for a passkey were made for an open challenge; `state` is the ceremony's.
    RequestPasskey {
        challenge_hash: TokenHash,
        state: SealedText,
    },
}

/// Passkeys (WebAuthn credentials). The edge runs the WebAuthn ceremonies (signatures, origins,
/// challenges); the account decides what its state says: which ceremony is open, which
/// credentials are its own, whether a signature counter went backwards.
#[derive(Debug)]
pub enum PasskeyCommand {
    StartRegistration {
        proof: Reauthentication,
        state: SealedText,
        expires_at: DateTime<Utc>,
    },
    /// The credential the open registration (`state`) verified.
    Register {
        state: SealedText,
        passkey: NewPasskey,
    },
    Rename {
        credential_id: String,
        name: SealedText,
    },
    Remove {
        credential_id: String,
        proof: Reauthentication,
    },
    /// Request options were given for re-authenticating with a passkey; `state` is the ceremony's.
    RequestReauthentication {
        state: SealedText,
        expires_at: DateTime<Utc>,
    },
    /// A passwordless sign-in: the edge checked the assertion against this account's passkey.
    SignIn {
        assertion: PasskeyCheck,
        session: NewSession,
    },
}

#[derive(Debug, Clone)]
pub struct NewPasskey {
    pub credential_id: String,
    pub name: SealedText,
    pub credential: String,
    pub counter: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub transports: Vec<String>,
}

/// What the edge found checking an assertion of the credential `credential_id`.
#[derive(Debug, Clone)]
pub struct PasskeyCheck {
    pub credential_id: String,
    pub outcome: Result<PasskeyAssertion, PasskeyRefusal>,
}

/// A verified assertion: the counter and backup state it carried and the credential updated
/// with them.
#[derive(Debug, Clone)]
pub struct PasskeyAssertion {
    pub counter: u32,
    pub backup_state: bool,
    pub credential: String,
}

#[derive(Debug, Clone)]
pub enum ApiTokenCommand {
    /// Re-authenticated by the password; a wrong one is recorded like a failed login.
    Create {
        password: SecretString,
        token: NewApiToken,
    },
    Revoke {
        token_id: TokenId,
    },
    RecordUse {
        token_id: TokenId,
    },
    RecordExpired {
        token_id: TokenId,
    },
    RecordRateLimited {
        token_id: TokenId,
    },
}

/// The reporting PIN.
#[derive(Debug)]
pub enum PinCommand {
    /// Re-authenticated by the password; a wrong one is recorded.
    Set {
        password: SecretString,
        pin_hash: PasswordHash,
    },
    Remove {
        password: SecretString,
    },
    /// Unlocks reporting history for `session_id` when the PIN is right.
    Verify {
        pin: SecretString,
        session_id: SessionId,
    },
}

/// What support and platform administrators do to an account.
#[derive(Debug)]
pub enum SupportCommand {
    /// At most one request is open at a time; further ones are absorbed.
    RequestAccess {
        request_id: Uuid,
        reason: SealedText,
    },
    /// Approving lifts every lock.
    DecideAccessRequest {
        request_id: Uuid,
        approve: bool,
        by: AccountId,
    },
    Unlock {
        by: AccountId,
    },
    ResetMfa {
        by: AccountId,
    },
    GrantAdmin,
    /// A platform administrator grants or takes back the auditor role.
    SetAuditor {
        auditor: bool,
        by: AccountId,
    },
    /// Ends every session and token, then marks the account erased.
    Erase {
        by: AccountId,
    },
}

macro_rules! part_of_account {
    ($($part:ident => $variant:ident),* $(,)?) => {
        $(impl From<$part> for AccountCommand {
            fn from(command: $part) -> Self {
                Self::$variant(command)
            }
        })*
    };
}

part_of_account! {
    PasswordCommand => Password,
    SessionCommand => Session,
    MfaCommand => Mfa,
    ApiTokenCommand => ApiToken,
    PinCommand => Pin,
    SupportCommand => Support,
    IdentityCommand => Identity,
    PasskeyCommand => Passkey,
}

/// An API token the edge has minted; only its hash reaches the domain.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub token_id: TokenId,
    pub name: String,
    pub token_hash: TokenHash,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub enum MfaProof {
    Totp(TotpCode),
    /// The SHA-256 of a normalized recovery code.
    RecoveryCode(String),
    /// The keyed hash of an emailed code.
    Email(String),
    /// A passkey's assertion against the challenge's ceremony `state`.
    Passkey {
        state: SealedText,
        check: PasskeyCheck,
    },
}

/// What proves, once more, that the caller is the account's owner.
#[derive(Debug, Clone)]
pub enum Reauthentication {
    Password(SecretString),
    Totp(TotpCode),
    /// A passkey's assertion against the account's open re-authentication ceremony `state`.
    Passkey {
        state: SealedText,
        check: PasskeyCheck,
    },
}

/// A session the edge has minted (id and token hash) for the aggregate to start if the login
/// succeeds. The token itself never reaches the domain.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: SessionId,
    pub token_hash: TokenHash,
    pub device: Option<SealedText>,
    pub method: AuthMethod,
    /// A sign-in through an identity provider: what the provider said about it.
    pub sso: Option<Box<ProviderSignIn>>,
    /// A keyed hash of the device, to tell a sign-in from a new device.
    pub device_hash: Option<String>,
}
