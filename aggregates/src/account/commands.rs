use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::events::{AuthMethod, SessionEndReason};
use crate::shared::{AccountId, PasswordHash, Scope, SealedText, SessionId, TokenHash, TokenId};
use crate::shared::{TotpCode, WorkspaceId};

/// What a caller asks of an account. Values are already parsed and, where they are personal data,
/// already sealed: parsing and sealing happen once, at the edge.
#[derive(Debug)]
pub enum AccountCommand {
    Register {
        account_id: AccountId,
        email: SealedText,
        display_name: Option<SealedText>,
        password_hash: PasswordHash,
    },
    /// The password step of a login. A wrong password is recorded, not refused with an error.
    /// With MFA on, a challenge (identified by `challenge_hash`) is issued instead of a session.
    LogIn {
        password: SecretString,
        session: NewSession,
        challenge_hash: TokenHash,
        /// Workspaces of this account that require MFA (read from their policy).
        mfa_required_by: Vec<WorkspaceId>,
    },
    /// Ends the sessions that did not pass a second factor.
    EndSessionsWithoutMfa,
    /// The second step: a TOTP or recovery code against an open challenge.
    CompleteMfa {
        challenge_hash: TokenHash,
        proof: MfaProof,
        session: NewSession,
    },
    StartTotpEnrolment {
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
    },
    ConfirmEmailMfa {
        code_hash: String,
    },
    DisableEmailMfa {
        password: SecretString,
    },
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
    /// Re-authenticated by the password; a wrong one is recorded.
    SetPin {
        password: SecretString,
        pin_hash: PasswordHash,
    },
    RemovePin {
        password: SecretString,
    },
    /// Unlocks reporting history for `session_id` when the PIN is right.
    VerifyPin {
        pin: SecretString,
        session_id: SessionId,
    },
    /// Ends every session and token, then marks the account erased.
    Erase {
        by: AccountId,
    },
    GrantAdmin,
    Unlock {
        by: AccountId,
    },
    ResetMfa {
        by: AccountId,
    },
    EndSession {
        session_id: SessionId,
        reason: SessionEndReason,
    },
    RevokeAllSessions {
        reason: SessionEndReason,
    },
    ChangePassword {
        current_password: SecretString,
        new_password_hash: PasswordHash,
        /// The session the change was made from stays; every other one ends.
        keep_session: Option<SessionId>,
    },
    RequestPasswordReset {
        token_hash: TokenHash,
        expires_at: DateTime<Utc>,
    },
    ResetPassword {
        token_hash: TokenHash,
        new_password_hash: PasswordHash,
    },
    /// Re-authenticated by the password; a wrong one is recorded like a failed login.
    CreateApiToken {
        password: SecretString,
        token: NewApiToken,
    },
    RevokeApiToken {
        token_id: TokenId,
    },
    RecordApiTokenUse {
        token_id: TokenId,
    },
    RecordApiTokenExpired {
        token_id: TokenId,
    },
    RecordApiTokenRateLimited {
        token_id: TokenId,
    },
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
    EmailCode(String),
}

#[derive(Debug, Clone)]
pub enum Reauthentication {
    Password(SecretString),
    Totp(TotpCode),
}

/// A session the edge has minted (id and token hash) for the aggregate to start if the login
/// succeeds. The token itself never reaches the domain.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: SessionId,
    pub token_hash: TokenHash,
    pub device: Option<SealedText>,
    pub method: AuthMethod,
}
