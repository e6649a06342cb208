//! Second factors: TOTP enrollment and confirmation, the login's second step, turning factors
//! off, new recovery codes, and emailed codes.

use std::collections::HashMap;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use warden_aggregates::account::{
    AccountCommand, MfaCommand, MfaMethod, MfaProof, Reauthentication,
};
use warden_aggregates::shared::{AccountId, TokenHash, TotpCode};
use warden_projections::queries;

use super::command::{Commands, Settle};
use super::context::{metadata, Authenticated, RequestContext};
use super::directory::Directory;
use super::error::AppError;
use super::mail_outbox::{email_code, email_code_scope, EMAIL_CODE_MINUTES};
use super::personal::Personal;
use super::problem::ProblemCode;
use super::sessions::{sign_in_step, LoggedIn};
use crate::adapters::client_throttle::ClientThrottle;
use crate::adapters::tokens::{self, CHALLENGE_PREFIX};
use crate::adapters::totp::{otpauth_uri, qr_svg, RfcTotp};

pub const RECOVERY_CODES: usize = 10;

/// Shown once, at enrollment.
pub struct TotpEnrollment {
    pub secret: SecretString,
    pub otpauth_uri: SecretString,
    pub qr_svg: SecretString,
    pub recovery_codes: Vec<SecretString>,
}

/// The password, or else a current TOTP code, that proves the caller again.
pub fn reauthentication(
    password: Option<SecretString>,
    code: Option<String>,
) -> Result<Reauthentication, AppError> {
    match (password, code) {
        (Some(password), _) => Ok(Reauthentication::Password(password)),
        (None, Some(code)) => Ok(Reauthentication::Totp(totp_code(&code)?)),
        (None, None) => Err(AppError::new(ProblemCode::ReauthenticationRequired)),
    }
}

fn totp_code(code: &str) -> Result<TotpCode, AppError> {
    TotpCode::parse(code)
        .ok_or_else(|| AppError::with(ProblemCode::InvalidCodeFormat, "a TOTP code is six digits"))
}

fn recovery_code_hash(code: &str) -> Result<String, AppError> {
    tokens::recovery_code_hash(code).ok_or_else(|| {
        AppError::with(
            ProblemCode::InvalidCodeFormat,
            "a recovery code is 24 letters and digits, dashes optional",
        )
    })
}

#[derive(Clone)]
pub struct Mfa {
    commands: Commands,
    directory: Directory,
    throttle: ClientThrottle,
    totp: Arc<RfcTotp>,
    totp_issuer: String,
    pool: PgPool,
}

impl Mfa {
    pub fn new(
        commands: Commands,
        directory: Directory,
        throttle: ClientThrottle,
        totp: Arc<RfcTotp>,
        totp_issuer: String,
        pool: PgPool,
    ) -> Self {
        Self {
            commands,
            directory,
            throttle,
            totp,
            totp_issuer,
            pool,
        }
    }

    /// A second-factor command of the caller's own account; a recorded failure is `refused`.
    async fn checked(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        command: impl Fn() -> MfaCommand,
        refused: ProblemCode,
    ) -> Result<(), AppError> {
        self.commands
            .own(who, ctx, command, Settle::Views, refused)
            .await
            .map(|_| ())
    }

    pub async fn complete(
        &self,
        challenge: SecretString,
        method: MfaMethod,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<LoggedIn, AppError> {
        self.throttle.check(ctx.ip.as_deref())?;
        let (challenge_hash, account_id) = self.open_challenge(&challenge).await?;
        let proof = match method {
            MfaMethod::Totp => MfaProof::Totp(totp_code(code)?),
            MfaMethod::Email => {
                let code = totp_code(code)?;
                let scope = email_code_scope(account_id, Some(&challenge_hash.0));
                MfaProof::Email(
                    self.directory
                        .keys()
                        .master()
                        .code_hash(&scope, code.as_str()),
                )
            }
            MfaMethod::RecoveryCode => MfaProof::RecoveryCode(recovery_code_hash(code)?),
            MfaMethod::Passkey => {
                return Err(AppError::with(
                    ProblemCode::PasskeyInvalid,
                    "a passkey answers with `credential`, not `code`",
                ))
            }
        };
        self.second_step(challenge_hash, account_id, proof, ctx)
            .await
    }

    /// The second step with its proof, against the challenge `challenge_hash` of `account_id`.
    pub(super) async fn second_step(
        &self,
        challenge_hash: TokenHash,
        account_id: AccountId,
        proof: MfaProof,
        ctx: &RequestContext,
    ) -> Result<LoggedIn, AppError> {
        let step = |session| {
            AccountCommand::from(MfaCommand::Complete {
                challenge_hash: challenge_hash.clone(),
                proof: proof.clone(),
                session,
            })
        };
        let problems = (ProblemCode::ChallengeInvalid, ProblemCode::MfaCodeInvalid);
        sign_in_step(
            &self.commands,
            &self.directory,
            account_id,
            ctx,
            step,
            problems,
        )
        .await
    }

    pub async fn enroll_totp(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<TotpEnrollment, AppError> {
        who.require_session_while_enrolling()?;
        let Personal::Open(email) = self.directory.email_of(who.account_id).await? else {
            return Err(AppError::new(ProblemCode::AccountErased));
        };
        let secret = self.totp.new_secret();
        let codes = tokens::mint_recovery_codes(RECOVERY_CODES);
        let hashes: Vec<String> = codes.iter().map(|(_, hash)| hash.clone()).collect();
        let command = || {
            AccountCommand::from(MfaCommand::StartTotpEnrollment {
                secret: secret.sealed.clone(),
                recovery_code_hashes: hashes.clone(),
            })
        };
        self.commands
            .by(who, ctx, who.account_id, command, Settle::Views)
            .await?;
        let uri = otpauth_uri(&self.totp_issuer, &email, &secret.base32);
        let svg =
            qr_svg(&uri).ok_or_else(|| AppError::internal(anyhow::anyhow!("QR code too long")))?;
        Ok(TotpEnrollment {
            secret: SecretString::from(secret.base32),
            otpauth_uri: SecretString::from(uri),
            qr_svg: SecretString::from(svg),
            recovery_codes: codes.into_iter().map(|(code, _)| code).collect(),
        })
    }

    pub async fn confirm_totp(
        &self,
        who: &Authenticated,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session_while_enrolling()?;
        let code = totp_code(code)?;
        let command = || MfaCommand::ConfirmTotp { code: code.clone() };
        self.checked(who, ctx, command, ProblemCode::ConfirmationCodeInvalid)
            .await
    }

    pub async fn disable_totp(
        &self,
        who: &Authenticated,
        proof: Reauthentication,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session()?;
        let command = || MfaCommand::DisableTotp {
            proof: proof.clone(),
        };
        self.checked(who, ctx, command, ProblemCode::ReauthenticationFailed)
            .await
    }

    pub async fn replace_recovery_codes(
        &self,
        who: &Authenticated,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Vec<SecretString>, AppError> {
        who.require_session()?;
        let code = totp_code(code)?;
        let codes = tokens::mint_recovery_codes(RECOVERY_CODES);
        let hashes: Vec<String> = codes.iter().map(|(_, hash)| hash.clone()).collect();
        self.commands
            .own(
                who,
                ctx,
                || MfaCommand::ReplaceRecoveryCodes {
                    code: code.clone(),
                    recovery_code_hashes: hashes.clone(),
                },
                Settle::Views,
                ProblemCode::ReauthenticationFailed,
            )
            .await?;
        Ok(codes.into_iter().map(|(code, _)| code).collect())
    }

    /// Mails a code that turns emailed codes on once confirmed.
    pub async fn start_email(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session_while_enrolling()?;
        let scope = email_code_scope(who.account_id, None);
        let metadata = self.commands.metadata_for(who, ctx).await?;
        self.send_email_code(who.account_id, None, &scope, &metadata)
            .await
    }

    pub async fn confirm_email(
        &self,
        who: &Authenticated,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session_while_enrolling()?;
        let code = totp_code(code)?;
        let scope = email_code_scope(who.account_id, None);
        let code_hash = self
            .directory
            .keys()
            .master()
            .code_hash(&scope, code.as_str());
        let command = || MfaCommand::ConfirmEmail {
            code_hash: code_hash.clone(),
        };
        self.checked(who, ctx, command, ProblemCode::ConfirmationCodeInvalid)
            .await
    }

    pub async fn disable_email(
        &self,
        who: &Authenticated,
        password: SecretString,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session()?;
        let command = || MfaCommand::DisableEmail {
            password: password.clone(),
        };
        self.checked(who, ctx, command, ProblemCode::ReauthenticationFailed)
            .await
    }

    /// Mails a code for an open login challenge.
    pub async fn send_challenge_code(
        &self,
        challenge: SecretString,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let (challenge_hash, account_id) = self.open_challenge(&challenge).await?;
        let key = self.directory.key(account_id).await?;
        let metadata = metadata(ctx, key.as_ref(), Some(account_id));
        let scope = email_code_scope(account_id, Some(&challenge_hash.0));
        self.send_email_code(account_id, Some(challenge_hash), &scope, &metadata)
            .await
    }

    /// Records a code to mail; the mail outbox derives it again and delivers it.
    async fn send_email_code(
        &self,
        account_id: AccountId,
        challenge_hash: Option<TokenHash>,
        scope: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<(), AppError> {
        let master = self.directory.keys().master();
        let mail_nonce = tokens::mint_nonce();
        let code = email_code(master, scope, &mail_nonce);
        let code_hash = master.code_hash(scope, code.expose_secret());
        let expires_at =
            self.commands.clock().now() + chrono::Duration::minutes(EMAIL_CODE_MINUTES);
        let command = || {
            AccountCommand::from(MfaCommand::SendEmailCode {
                challenge_hash: challenge_hash.clone(),
                code_hash: code_hash.clone(),
                expires_at,
                mail_nonce: mail_nonce.clone(),
            })
        };
        self.commands
            .account(account_id, command, metadata, Settle::Views)
            .await?;
        Ok(())
    }

    /// The hash of a presented challenge token and the account it belongs to.
    pub(super) async fn open_challenge(
        &self,
        challenge: &SecretString,
    ) -> Result<(TokenHash, AccountId), AppError> {
        let invalid = || AppError::new(ProblemCode::ChallengeInvalid);
        let hash = tokens::hash_presented(challenge, CHALLENGE_PREFIX).ok_or_else(invalid)?;
        let account_id = queries::credentials::challenge_account(&self.pool, &hash.0)
            .await?
            .ok_or_else(invalid)?;
        Ok((hash, AccountId(account_id)))
    }
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrollment(..)")
    }
}

/// For responses only: the enrollment's secrets in the clear.
pub fn reveal(secret: &SecretString) -> String {
    secret.expose_secret().to_string()
}
