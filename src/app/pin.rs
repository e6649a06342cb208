//! The reporting PIN: set and removed behind the password, verified per session.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use warden_aggregates::account::{Outcome, PinCommand};

use super::command::{Commands, Settle};
use super::context::{Authenticated, RequestContext};
use super::error::AppError;
use super::problem::ProblemCode;
use crate::adapters::password::Argon2Passwords;

fn check_pin(pin: &SecretString) -> Result<(), AppError> {
    let pin = pin.expose_secret();
    if (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AppError::new(ProblemCode::InvalidPin))
    }
}

/// Whether the account has a PIN, and until when it unlocked reporting for this session.
pub struct PinStatus {
    pub set: bool,
    pub unlocked_until: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Pin {
    commands: Commands,
    passwords: Argon2Passwords,
}

impl Pin {
    pub fn new(commands: Commands, passwords: Argon2Passwords) -> Self {
        Self {
            commands,
            passwords,
        }
    }

    pub async fn status(&self, who: &Authenticated) -> Result<PinStatus, AppError> {
        let session_id = who.require_session()?;
        let account = self.commands.load_account(who.account_id).await?;
        let now = self.commands.clock().now();
        let unlocked_until = account
            .sessions()
            .find(|(id, _)| **id == session_id)
            .and_then(|(_, session)| session.pin_unlocked_until)
            .filter(|until| *until > now);
        Ok(PinStatus {
            set: account.pin_set(),
            unlocked_until,
        })
    }

    pub async fn set(
        &self,
        who: &Authenticated,
        pin: SecretString,
        password: SecretString,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session()?;
        check_pin(&pin)?;
        let pin_hash = self
            .passwords
            .hash(&pin)
            .await
            .map_err(AppError::internal)?;
        let command = || PinCommand::Set {
            password: password.clone(),
            pin_hash: pin_hash.clone(),
        };
        self.reauthenticated(who, ctx, command).await
    }

    pub async fn remove(
        &self,
        who: &Authenticated,
        password: SecretString,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session()?;
        let command = || PinCommand::Remove {
            password: password.clone(),
        };
        self.reauthenticated(who, ctx, command).await
    }

    /// Unlocks reporting history for the caller's session; answers until when.
    pub async fn verify(
        &self,
        who: &Authenticated,
        pin: SecretString,
        ctx: &RequestContext,
    ) -> Result<DateTime<Utc>, AppError> {
        let session_id = who.require_session()?;
        let command = || PinCommand::Verify {
            pin: pin.clone(),
            session_id,
        };
        let refused = ProblemCode::PinInvalid;
        match self
            .commands
            .own(who, ctx, command, Settle::Views, refused)
            .await?
        {
            Outcome::PinUnlocked { until } => Ok(until),
            _ => Err(AppError::new(refused)),
        }
    }

    /// A PIN command behind the password.
    async fn reauthenticated(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        command: impl Fn() -> PinCommand,
    ) -> Result<(), AppError> {
        let refused = ProblemCode::ReauthenticationFailed;
        self.commands
            .own(who, ctx, command, Settle::Views, refused)
            .await
            .map(|_| ())
    }
}
