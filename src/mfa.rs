//! Second-factor use cases: TOTP enrolment and confirmation, the login's second step, turning
//! TOTP off, new recovery codes.

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;
use warden_aggregates::account::{
    Account, AccountCommand, AccountEvent, AuthMethod, MfaMethod, MfaProof, NewSession,
    Reauthentication,
};
use warden_aggregates::shared::{AccountId, ErrorKind, SessionId, TokenHash, TotpCode};

use crate::accounts::{
    metadata, started_session, AccountsService, Authenticated, LoggedIn, RequestContext,
};
use crate::adapters::tokens::{self, CHALLENGE_PREFIX, SESSION_PREFIX};
use crate::adapters::totp::{otpauth_uri, qr_svg};
use crate::error::AppError;

pub const RECOVERY_CODES: usize = 10;
const EMAIL_CODE_MINUTES: i64 = 10;

/// What an emailed code is bound to: the account, and the challenge (or enrolment).
fn email_code_scope(account_id: AccountId, challenge_hash: Option<&str>) -> String {
    format!("{account_id}:{}", challenge_hash.unwrap_or("enrolment"))
}

/// Shown once, at enrolment.
pub struct TotpEnrolment {
    pub secret: SecretString,
    pub otpauth_uri: SecretString,
    pub qr_svg: SecretString,
    pub recovery_codes: Vec<SecretString>,
}

fn totp_code(code: &str) -> Result<TotpCode, AppError> {
    TotpCode::parse(code)
        .ok_or_else(|| AppError::invalid("invalid_code_format", "a TOTP code is six digits"))
}

fn challenge_invalid() -> AppError {
    AppError::rejected(
        ErrorKind::Unauthenticated,
        "challenge_invalid",
        "the login challenge is unknown, used or expired; log in again",
    )
}

fn mfa_code_invalid() -> AppError {
    AppError::invalid("mfa_code_invalid", "the code is wrong or no longer valid")
}

fn reauthentication_failed() -> AppError {
    AppError::rejected(
        ErrorKind::Forbidden,
        "reauthentication_failed",
        "the password or code is wrong",
    )
}

impl AccountsService {
    pub async fn complete_mfa(
        &self,
        challenge: SecretString,
        method: MfaMethod,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<LoggedIn, AppError> {
        let (challenge_hash, account_id) = self.open_challenge(&challenge).await?;
        let proof = match method {
            MfaMethod::Totp => MfaProof::Totp(totp_code(code)?),
            MfaMethod::Email => {
                let code = totp_code(code)?;
                let scope = email_code_scope(account_id, Some(&challenge_hash.0));
                MfaProof::EmailCode(self.keys.master().code_hash(&scope, code.as_str()))
            }
            MfaMethod::RecoveryCode => {
                MfaProof::RecoveryCode(tokens::recovery_code_hash(code).ok_or_else(|| {
                    AppError::invalid(
                        "invalid_code_format",
                        "a recovery code is 24 letters and digits, dashes optional",
                    )
                })?)
            }
        };
        let (token, token_hash) = tokens::mint(SESSION_PREFIX);
        let session = NewSession {
            session_id: SessionId(Uuid::now_v7()),
            token_hash,
            device: None,
            method: AuthMethod::Password,
        };
        let key = self.keys.get(account_id.0).await?;
        let metadata = metadata(ctx, key.as_ref(), Some(account_id));
        let committed = self
            .execute(
                account_id,
                || AccountCommand::CompleteMfa {
                    challenge_hash: challenge_hash.clone(),
                    proof: proof.clone(),
                    session: session.clone(),
                },
                &metadata,
            )
            .await
            .map_err(|e| match e {
                AppError::Rejected {
                    code: "challenge_invalid" | "account_not_found",
                    ..
                } => challenge_invalid(),
                other => other,
            })?;
        self.settle(&committed, false).await?;
        started_session(&committed.events, token).ok_or_else(|| {
            AppError::rejected(
                ErrorKind::Unauthenticated,
                "mfa_code_invalid",
                "the code is wrong or was used already",
            )
        })
    }

    pub async fn enrol_totp(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<TotpEnrolment, AppError> {
        who.require_session_while_enrolling()?;
        let profile = self.profile(who).await?;
        let secret = self.totp.new_secret();
        let codes = tokens::mint_recovery_codes(RECOVERY_CODES);
        let hashes: Vec<String> = codes.iter().map(|(_, hash)| hash.clone()).collect();
        self.act(
            who,
            who.account_id,
            ctx,
            || AccountCommand::StartTotpEnrolment {
                secret: secret.sealed.clone(),
                recovery_code_hashes: hashes.clone(),
            },
            false,
        )
        .await?;
        let uri = otpauth_uri(&self.totp_issuer, &profile.email, &secret.base32);
        let svg =
            qr_svg(&uri).ok_or_else(|| AppError::internal(anyhow::anyhow!("QR code too long")))?;
        Ok(TotpEnrolment {
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
        self.act_expecting(
            who,
            ctx,
            || AccountCommand::ConfirmTotp { code: code.clone() },
            |e| matches!(e, AccountEvent::TotpConfirmed { .. }),
            mfa_code_invalid,
        )
        .await
        .map(|_| ())
    }

    pub async fn disable_totp(
        &self,
        who: &Authenticated,
        password: Option<SecretString>,
        code: Option<String>,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session()?;
        let proof = match (password, code) {
            (Some(password), _) => Reauthentication::Password(password),
            (None, Some(code)) => Reauthentication::Totp(totp_code(&code)?),
            (None, None) => {
                return Err(AppError::invalid(
                    "reauthentication_required",
                    "give the password or a current code",
                ))
            }
        };
        self.act_expecting(
            who,
            ctx,
            || AccountCommand::DisableTotp {
                proof: proof.clone(),
            },
            |e| matches!(e, AccountEvent::TotpDisabled { .. }),
            reauthentication_failed,
        )
        .await
        .map(|_| ())
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
        self.act_expecting(
            who,
            ctx,
            || AccountCommand::ReplaceRecoveryCodes {
                code: code.clone(),
                recovery_code_hashes: hashes.clone(),
            },
            |e| matches!(e, AccountEvent::RecoveryCodesReplaced { .. }),
            reauthentication_failed,
        )
        .await?;
        Ok(codes.into_iter().map(|(code, _)| code).collect())
    }

    /// Mails a code that turns emailed codes on once confirmed.
    pub async fn start_email_mfa(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session_while_enrolling()?;
        let scope = email_code_scope(who.account_id, None);
        let metadata = self.metadata_for(who, ctx).await?;
        self.send_email_code(who.account_id, None, &scope, &metadata, ctx)
            .await
    }

    pub async fn confirm_email_mfa(
        &self,
        who: &Authenticated,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session_while_enrolling()?;
        let code = totp_code(code)?;
        let scope = email_code_scope(who.account_id, None);
        let code_hash = self.keys.master().code_hash(&scope, code.as_str());
        self.act_expecting(
            who,
            ctx,
            || AccountCommand::ConfirmEmailMfa {
                code_hash: code_hash.clone(),
            },
            |e| matches!(e, AccountEvent::EmailMfaEnabled { .. }),
            mfa_code_invalid,
        )
        .await
        .map(|_| ())
    }

    pub async fn disable_email_mfa(
        &self,
        who: &Authenticated,
        password: SecretString,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session()?;
        self.act_expecting(
            who,
            ctx,
            || AccountCommand::DisableEmailMfa {
                password: password.clone(),
            },
            |e| matches!(e, AccountEvent::EmailMfaDisabled { .. }),
            reauthentication_failed,
        )
        .await
        .map(|_| ())
    }

    /// Mails a code for an open login challenge.
    pub async fn send_challenge_email_code(
        &self,
        challenge: SecretString,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let (challenge_hash, account_id) = self.open_challenge(&challenge).await?;
        let key = self.keys.get(account_id.0).await?;
        let metadata = metadata(ctx, key.as_ref(), Some(account_id));
        let scope = email_code_scope(account_id, Some(&challenge_hash.0));
        self.send_email_code(account_id, Some(challenge_hash), &scope, &metadata, ctx)
            .await
    }

    async fn send_email_code(
        &self,
        account_id: AccountId,
        challenge_hash: Option<TokenHash>,
        scope: &str,
        metadata: &std::collections::HashMap<String, String>,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        let code = tokens::mint_email_code();
        let code_hash = self.keys.master().code_hash(scope, code.expose_secret());
        let expires_at = self.clock.now() + chrono::Duration::minutes(EMAIL_CODE_MINUTES);
        let committed = self
            .execute(
                account_id,
                || AccountCommand::SendEmailCode {
                    challenge_hash: challenge_hash.clone(),
                    code_hash: code_hash.clone(),
                    expires_at,
                },
                metadata,
            )
            .await?;
        self.settle(&committed, false).await?;
        let email = self.email_of(account_id).await?;
        let mail = crate::adapters::mail::OutgoingMail {
            to: email,
            subject: "Your Warden code".into(),
            body: format!(
                "Your Warden code is:\r\n\r\n{}\r\n\r\nIt works once, within {EMAIL_CODE_MINUTES} minutes. \
                 If you did not ask for it, someone may know your password: change it.\r\n",
                code.expose_secret()
            ),
        };
        if let Err(error) = self.mailer.send(mail).await {
            tracing::error!(%error, request_id = %ctx.request_id, "code mail not sent");
            return Err(AppError::Unavailable {
                code: "mail_unavailable",
                detail: "the code could not be mailed; try again shortly".into(),
            });
        }
        Ok(())
    }

    /// The hash of a presented challenge token and the account it belongs to.
    async fn open_challenge(
        &self,
        challenge: &SecretString,
    ) -> Result<(TokenHash, AccountId), AppError> {
        let hash =
            tokens::hash_presented(challenge, CHALLENGE_PREFIX).ok_or_else(challenge_invalid)?;
        let account_id: Option<Uuid> = sqlx::query_scalar(
            "SELECT account_id FROM mfa_challenges_v1 WHERE challenge_hash = $1",
        )
        .bind(&hash.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok((hash, AccountId(account_id.ok_or_else(challenge_invalid)?)))
    }

    /// The account as of its latest event.
    pub async fn account(&self, account_id: AccountId) -> Result<Account, AppError> {
        let (account, _) = self
            .store()
            .load::<Account>(&account_id.to_string())
            .await
            .map_err(AppError::from)?;
        Ok(account)
    }
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(..)")
    }
}

/// For responses only: the enrolment's secrets in the clear.
pub fn reveal(secret: &SecretString) -> String {
    secret.expose_secret().to_string()
}
