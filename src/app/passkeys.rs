//! Passkeys (docs/adr/0021): registration after re-authentication, the list, renaming and
//! removal; a passkey as the login's second factor; passwordless sign-in with a discoverable
//! passkey. `webauthn-rs` runs the ceremonies; their state is sealed and kept with the account
//! (registration, second factor) or, before anyone is known, in `passkey_sign_ins`; the account
//! decides what its state says (docs/adr/0021).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use warden_aggregates::account::{
    Account, AccountCommand, MfaCommand, MfaProof, NewPasskey, PasskeyAssertion, PasskeyCheck,
    PasskeyCommand, PasskeyRefusal, Reauthentication,
};
use warden_aggregates::shared::{AccountId, SealedText};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, WebauthnError,
};
use webauthn_rs::Webauthn;

use super::command::{Commands, Settle};
use super::context::{metadata, Authenticated, RequestContext};
use super::directory::Directory;
use super::error::AppError;
use super::mfa::{reauthentication, Mfa};
use super::personal::Personal;
use super::problem::ProblemCode;
use super::sessions::{sign_in_step, LoggedIn};
use crate::adapters::client_throttle::ClientThrottle;
use crate::adapters::sealing::DataKey;
use crate::adapters::tokens;

/// How long a ceremony's options stay answerable.
const CEREMONY_MINUTES: i64 = 5;
const NAME_CHARS: usize = 64;

/// A registered passkey as its owner sees it.
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub transports: Vec<String>,
}

#[derive(Clone)]
pub struct Passkeys {
    commands: Commands,
    directory: Directory,
    throttle: ClientThrottle,
    webauthn: Option<Arc<Webauthn>>,
    mfa: Mfa,
    pool: PgPool,
}

impl Passkeys {
    pub fn new(
        commands: Commands,
        directory: Directory,
        throttle: ClientThrottle,
        webauthn: Option<Arc<Webauthn>>,
        mfa: Mfa,
        pool: PgPool,
    ) -> Self {
        Self {
            commands,
            directory,
            throttle,
            webauthn,
            mfa,
            pool,
        }
    }

    /// The relying party, while passkeys are on.
    /// Whether passkeys are on (Warden's public URL names a domain).
    pub fn enabled(&self) -> bool {
        self.webauthn.is_some()
    }

    fn party(&self) -> Result<&Webauthn, AppError> {
        self.webauthn
            .as_deref()
            .ok_or_else(|| AppError::new(ProblemCode::PasskeysOff))
    }

    /// A passkey command on the caller's own account; a recorded failure answers `refused`.
    async fn change(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        command: impl Fn() -> PasskeyCommand,
        settle: Settle,
        refused: ProblemCode,
    ) -> Result<(), AppError> {
        self.commands
            .own(who, ctx, command, settle, refused)
            .await
            .map(|_| ())
    }

    async fn data_key(&self, account_id: AccountId) -> Result<DataKey, AppError> {
        let key = self.directory.key(account_id).await?;
        key.ok_or_else(|| AppError::new(ProblemCode::AccountErased))
    }

    /// Request options for the account's passkeys, and the ceremony's state sealed for `purpose`.
    async fn request_options(
        &self,
        account_id: AccountId,
        purpose: &str,
    ) -> Result<(Value, SealedText), AppError> {
        let account = self.commands.load_account(account_id).await?;
        let passkeys: Vec<Passkey> = registered(&account).map(|(_, p)| p).collect();
        if passkeys.is_empty() {
            return Err(AppError::new(ProblemCode::NoPasskey));
        }
        let (options, state) = self
            .party()?
            .start_passkey_authentication(&passkeys)
            .map_err(AppError::internal)?;
        let options = serde_json::to_value(options).map_err(AppError::internal)?;
        Ok((options, self.seal(purpose, &state)?))
    }

    /// `answer` checked against the ceremony `sealed` for `purpose` by `request_options`.
    fn check_against(
        &self,
        account: &Account,
        answer: &PublicKeyCredential,
        purpose: &str,
        sealed: &SealedText,
    ) -> Result<PasskeyCheck, AppError> {
        let state: PasskeyAuthentication = self.open(purpose, sealed)?;
        Ok(self.check(account, answer, |webauthn| {
            webauthn.finish_passkey_authentication(answer, &state)
        }))
    }

    fn now(&self) -> DateTime<Utc> {
        self.commands.clock().now()
    }

    fn seal<T: Serialize>(&self, purpose: &str, state: &T) -> Result<SealedText, AppError> {
        let bytes = serde_json::to_vec(state).map_err(AppError::internal)?;
        Ok(self.directory.keys().master().seal_secret(purpose, &bytes))
    }

    fn open<T: DeserializeOwned>(&self, purpose: &str, sealed: &SealedText) -> Result<T, AppError> {
        let bytes = self
            .directory
            .keys()
            .master()
            .open_secret(purpose, sealed)
            .map_err(AppError::internal)?;
        serde_json::from_slice(&bytes).map_err(AppError::internal)
    }

    /// Creation options for a new passkey, after the password (or a current code).
    pub async fn start_registration(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        proof: Reauthentication,
    ) -> Result<Value, AppError> {
        who.require_session_while_enrolling()?;
        let account = self.commands.load_account(who.account_id).await?;
        let email = self.directory.email_of(who.account_id).await?;
        let exclude = registered(&account)
            .map(|(_, passkey)| passkey.cred_id().clone())
            .collect();
        let (options, state) = self
            .party()?
            .start_passkey_registration(who.account_id.0, email.text(), email.text(), Some(exclude))
            .map_err(AppError::internal)?;
        let mut options = serde_json::to_value(options).map_err(AppError::internal)?;
        // Discoverable where the authenticator can, so that it also signs in without an address.
        if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
            selection["residentKey"] = Value::from("preferred");
        }
        let state = self.seal(&registration_purpose(who.account_id), &state)?;
        let expires_at = self.now() + Duration::minutes(CEREMONY_MINUTES);
        let command = || PasskeyCommand::StartRegistration {
            proof: proof.clone(),
            state: state.clone(),
            expires_at,
        };
        let refused = ProblemCode::ReauthenticationFailed;
        self.change(who, ctx, command, Settle::No, refused).await?;
        Ok(options)
    }

    /// Completes the open registration with the authenticator's answer.
    pub async fn finish_registration(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        credential: Value,
        name: &str,
    ) -> Result<PasskeyView, AppError> {
        who.require_session_while_enrolling()?;
        let name = passkey_name(name)?;
        let answer: RegisterPublicKeyCredential = credential_of(credential)?;
        let account = self.commands.load_account(who.account_id).await?;
        let sealed = account
            .passkey_registration(self.now())
            .cloned()
            .ok_or_else(|| AppError::new(ProblemCode::PasskeyRegistrationInvalid))?;
        let state: PasskeyRegistration =
            self.open(&registration_purpose(who.account_id), &sealed)?;
        let passkey = self
            .party()?
            .finish_passkey_registration(&answer, &state)
            .map_err(|e| AppError::with(ProblemCode::PasskeyRegistrationRefused, e.to_string()))?;
        let key = self.data_key(who.account_id).await?;
        let new = new_passkey(&passkey, &answer, key.seal(&name))?;
        let id = new.credential_id.clone();
        let command = || PasskeyCommand::Register {
            state: sealed.clone(),
            passkey: new.clone(),
        };
        let refused = ProblemCode::PasskeyRegistrationInvalid;
        self.change(who, ctx, command, Settle::Views, refused)
            .await?;
        self.list(who)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| AppError::new(ProblemCode::PasskeyNotFound))
    }

    pub async fn list(&self, who: &Authenticated) -> Result<Vec<PasskeyView>, AppError> {
        who.require_read_of_own_account()?;
        let account = self.commands.load_account(who.account_id).await?;
        let key = self.directory.key(who.account_id).await?;
        Ok(account
            .passkeys()
            .iter()
            .map(|(id, stored)| PasskeyView {
                id: id.clone(),
                name: Personal::open(key.as_ref(), &stored.name).into_text(),
                created_at: stored.created_at,
                last_used_at: stored.last_used_at,
                backup_eligible: stored.backup_eligible,
                backup_state: stored.backup_state,
                transports: stored.transports.clone(),
            })
            .collect())
    }

    pub async fn rename(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        id: &str,
        name: &str,
    ) -> Result<(), AppError> {
        who.require_session()?;
        let name = passkey_name(name)?;
        let key = self.data_key(who.account_id).await?;
        let name = key.seal(&name);
        let command = || PasskeyCommand::Rename {
            credential_id: id.to_string(),
            name: name.clone(),
        };
        let refused = ProblemCode::PasskeyNotFound;
        self.change(who, ctx, command, Settle::Views, refused).await
    }

    pub async fn remove(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        id: &str,
        proof: Reauthentication,
    ) -> Result<(), AppError> {
        who.require_session()?;
        let command = || PasskeyCommand::Remove {
            credential_id: id.to_string(),
            proof: proof.clone(),
        };
        let refused = ProblemCode::ReauthenticationFailed;
        self.change(who, ctx, command, Settle::Views, refused).await
    }

    /// Request options for re-authenticating with one of the caller's passkeys, before a change
    /// that asks for the password or a current code.
    pub async fn reauthentication_options(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<Value, AppError> {
        who.require_session_while_enrolling()?;
        let purpose = reauthentication_purpose(who.account_id);
        let (options, state) = self.request_options(who.account_id, &purpose).await?;
        let expires_at = self.now() + Duration::minutes(CEREMONY_MINUTES);
        let command = || PasskeyCommand::RequestReauthentication {
            state: state.clone(),
            expires_at,
        };
        self.change(who, ctx, command, Settle::No, ProblemCode::NoPasskey)
            .await?;
        Ok(options)
    }

    /// What proves the caller again: a passkey's answer to the re-authentication options, or
    /// else the password, or else a current TOTP code.
    pub async fn proof(
        &self,
        who: &Authenticated,
        password: Option<SecretString>,
        code: Option<String>,
        passkey: Option<Value>,
    ) -> Result<Reauthentication, AppError> {
        let Some(credential) = passkey else {
            return reauthentication(password, code);
        };
        let answer: PublicKeyCredential = credential_of(credential)?;
        let account = self.commands.load_account(who.account_id).await?;
        let sealed = account
            .passkey_reauthentication(self.now())
            .cloned()
            .ok_or_else(|| AppError::new(ProblemCode::PasskeyCeremonyInvalid))?;
        let purpose = reauthentication_purpose(who.account_id);
        let check = self.check_against(&account, &answer, &purpose, &sealed)?;
        Ok(Reauthentication::Passkey {
            state: sealed,
            check,
        })
    }

    /// Request options for the passkeys of the account an open login challenge is for.
    pub async fn second_factor_options(
        &self,
        challenge: SecretString,
        ctx: &RequestContext,
    ) -> Result<Value, AppError> {
        self.throttle.check(ctx.ip.as_deref())?;
        let (challenge_hash, account_id) = self.mfa.open_challenge(&challenge).await?;
        let purpose = second_factor_purpose(account_id);
        let (options, state) = self.request_options(account_id, &purpose).await?;
        let key = self.directory.key(account_id).await?;
        let metadata = metadata(ctx, key.as_ref(), Some(account_id));
        let command = || {
            AccountCommand::from(MfaCommand::RequestPasskey {
                challenge_hash: challenge_hash.clone(),
                state: state.clone(),
            })
        };
        self.commands
            .account(account_id, command, &metadata, Settle::No)
            .await
            .map_err(|e| e.as_unknown(ProblemCode::ChallengeInvalid))?;
        Ok(options)
    }

    /// The login's second step with a passkey's assertion.
    pub async fn second_factor(
        &self,
        challenge: SecretString,
        credential: Value,
        ctx: &RequestContext,
    ) -> Result<LoggedIn, AppError> {
        self.throttle.check(ctx.ip.as_deref())?;
        let answer: PublicKeyCredential = credential_of(credential)?;
        let (challenge_hash, account_id) = self.mfa.open_challenge(&challenge).await?;
        let account = self.commands.load_account(account_id).await?;
        let sealed = account
            .challenge_passkey_state(&challenge_hash)
            .ok_or_else(|| AppError::new(ProblemCode::ChallengeInvalid))?
            .cloned()
            .ok_or_else(|| {
                AppError::with(
                    ProblemCode::PasskeyRefused,
                    "ask for passkey options for this challenge first",
                )
            })?;
        let purpose = second_factor_purpose(account_id);
        let check = self.check_against(&account, &answer, &purpose, &sealed)?;
        let proof = MfaProof::Passkey {
            state: sealed,
            check,
        };
        self.mfa
            .second_step(challenge_hash, account_id, proof, ctx)
            .await
            .map_err(|e| match e.code() {
                ProblemCode::MfaCodeInvalid => AppError::new(ProblemCode::PasskeyRefused),
                _ => e,
            })
    }

    /// Request options for a passwordless sign-in: no address asked, so nothing to enumerate.
    pub async fn sign_in_options(&self, ctx: &RequestContext) -> Result<Value, AppError> {
        self.throttle.check(ctx.ip.as_deref())?;
        let (mut options, state) = self
            .party()?
            .start_discoverable_authentication()
            .map_err(AppError::internal)?;
        // A sign-in button, not the browser's autofill.
        options.mediation = None;
        let challenge = options.public_key.challenge.to_vec();
        let state = self.seal(SIGN_IN_PURPOSE, &state)?;
        let now = self.now();
        // One statement: the ceremonies that ran out go as this one is kept.
        sqlx::query(
            "WITH expired AS (DELETE FROM passkey_sign_ins WHERE expires_at < $4)
             INSERT INTO passkey_sign_ins (challenge_hash, state, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(tokens::hash_bytes(&challenge))
        .bind(&state.0)
        .bind(now + Duration::minutes(CEREMONY_MINUTES))
        .bind(now)
        .execute(&self.pool)
        .await?;
        serde_json::to_value(options).map_err(AppError::internal)
    }

    /// A passwordless sign-in with a discoverable passkey: a session of method `passkey`.
    pub async fn sign_in(
        &self,
        credential: Value,
        ctx: &RequestContext,
    ) -> Result<LoggedIn, AppError> {
        self.throttle.check(ctx.ip.as_deref())?;
        let refused = |detail: &str| AppError::with(ProblemCode::PasskeyRefused, detail);
        let answer: PublicKeyCredential = credential_of(credential)?;
        let challenge = client_challenge(&answer.response.client_data_json)
            .ok_or_else(|| refused("the answer carries no challenge"))?;
        let state = self
            .take_sign_in(&challenge)
            .await?
            .ok_or_else(|| refused("these options are unknown, used or expired; ask again"))?;
        let state: DiscoverableAuthentication = self.open(SIGN_IN_PURPOSE, &state)?;
        let (user, _) = self
            .party()?
            .identify_discoverable_authentication(&answer)
            .map_err(|_| refused("the passkey names no account"))?;
        let account_id = AccountId(user);
        let account = self.commands.load_account(account_id).await?;
        let check = self.check(&account, &answer, |webauthn| {
            let stored = stored_passkey(&account, &credential_id(&answer.raw_id))
                .ok_or(WebauthnError::CredentialNotFound)?;
            #[allow(deprecated)] // the v2 call needs the library's credential internals
            webauthn.finish_discoverable_authentication(
                &answer,
                state,
                &[DiscoverableKey::from(&stored)],
            )
        });
        self.start_passkey_session(account_id, check, ctx).await
    }

    async fn start_passkey_session(
        &self,
        account_id: AccountId,
        check: PasskeyCheck,
        ctx: &RequestContext,
    ) -> Result<LoggedIn, AppError> {
        let step = |session| {
            AccountCommand::from(PasskeyCommand::SignIn {
                assertion: check.clone(),
                session,
            })
        };
        let problems = (ProblemCode::PasskeyRefused, ProblemCode::PasskeyRefused);
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

    /// The passwordless ceremony whose challenge this is, taken: once, before it expires.
    async fn take_sign_in(&self, challenge: &[u8]) -> Result<Option<SealedText>, AppError> {
        let state: Option<String> = sqlx::query_scalar(
            "DELETE FROM passkey_sign_ins WHERE challenge_hash = $1 AND expires_at > $2
             RETURNING state",
        )
        .bind(tokens::hash_bytes(challenge))
        .bind(self.now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(state.map(SealedText))
    }

    /// What the library found checking `answer`, and the account's credential updated with it.
    fn check(
        &self,
        account: &Account,
        answer: &PublicKeyCredential,
        verify: impl FnOnce(
            &Webauthn,
        )
            -> Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
    ) -> PasskeyCheck {
        let credential_id = credential_id(&answer.raw_id);
        let verified = self
            .party()
            .map_err(|_| WebauthnError::CredentialNotFound)
            .and_then(verify);
        let outcome = match (stored_passkey(account, &credential_id), verified) {
            (None, _) => Err(PasskeyRefusal::UnknownCredential),
            (Some(_), Err(error)) => Err(refusal(&error)),
            (Some(mut passkey), Ok(result)) => {
                passkey.update_credential(&result);
                match serde_json::to_string(&passkey) {
                    Ok(credential) => Ok(PasskeyAssertion {
                        counter: result.counter(),
                        backup_state: result.backup_state(),
                        credential,
                    }),
                    Err(_) => Err(PasskeyRefusal::InvalidAssertion),
                }
            }
        };
        if let Err(reason) = &outcome {
            tracing::info!(?reason, "passkey assertion refused");
        }
        PasskeyCheck {
            credential_id,
            outcome,
        }
    }
}

const SIGN_IN_PURPOSE: &str = "passkey-sign-in";

fn registration_purpose(account_id: AccountId) -> String {
    format!("passkey-registration:{account_id}")
}

fn reauthentication_purpose(account_id: AccountId) -> String {
    format!("passkey-reauthentication:{account_id}")
}

fn second_factor_purpose(account_id: AccountId) -> String {
    format!("passkey-second-factor:{account_id}")
}

/// The account's passkeys as the library takes them.
fn registered(account: &Account) -> impl Iterator<Item = (&String, Passkey)> {
    account
        .passkeys()
        .iter()
        .filter_map(|(id, stored)| Some((id, serde_json::from_str(&stored.credential).ok()?)))
}

fn stored_passkey(account: &Account, credential_id: &str) -> Option<Passkey> {
    let stored = account.passkeys().get(credential_id)?;
    serde_json::from_str(&stored.credential).ok()
}

fn credential_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

fn credential_of<T: DeserializeOwned>(credential: Value) -> Result<T, AppError> {
    serde_json::from_value(credential).map_err(|e| {
        AppError::with(
            ProblemCode::PasskeyInvalid,
            format!("the credential is not a WebAuthn response of this kind: {e}"),
        )
    })
}

/// The challenge `clientDataJSON` names (base64url), decoded.
fn client_challenge(client_data: &[u8]) -> Option<Vec<u8>> {
    let data: Value = serde_json::from_slice(client_data).ok()?;
    URL_SAFE_NO_PAD
        .decode(data.get("challenge")?.as_str()?)
        .ok()
}

fn refusal(error: &WebauthnError) -> PasskeyRefusal {
    match error {
        WebauthnError::UserNotVerified => PasskeyRefusal::UserNotVerified,
        WebauthnError::CredentialPossibleCompromise => PasskeyRefusal::CounterWentBackwards,
        WebauthnError::CredentialNotFound => PasskeyRefusal::UnknownCredential,
        _ => PasskeyRefusal::InvalidAssertion,
    }
}

fn passkey_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    let printable = name.chars().all(|c| !c.is_control());
    if name.is_empty() || name.chars().count() > NAME_CHARS || !printable {
        return Err(AppError::new(ProblemCode::InvalidPasskeyName));
    }
    Ok(name.to_string())
}

/// What the account keeps of a passkey the library verified.
fn new_passkey(
    passkey: &Passkey,
    answer: &RegisterPublicKeyCredential,
    name: SealedText,
) -> Result<NewPasskey, AppError> {
    let credential = serde_json::to_value(passkey).map_err(AppError::internal)?;
    let flag = |field: &str| {
        credential
            .pointer(&format!("/cred/{field}"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let counter = credential
        .pointer("/cred/counter")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0);
    let transports = answer
        .response
        .transports
        .iter()
        .flatten()
        .filter_map(|t| serde_json::to_value(t).ok()?.as_str().map(str::to_string))
        .collect();
    Ok(NewPasskey {
        credential_id: credential_id(passkey.cred_id().as_ref()),
        name,
        counter,
        backup_eligible: flag("backup_eligible"),
        backup_state: flag("backup_state"),
        transports,
        credential: credential.to_string(),
    })
}
