//! The reporting PIN: set and removed behind the password, verified per session.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use warden_aggregates::account::{AccountCommand, AccountEvent, Outcome, PinCommand};

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

    async fn own(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        command: impl Fn() -> PinCommand,
    ) -> Result<Vec<AccountEvent>, AppError> {
        let command = || AccountCommand::from(command());
        let committed = self
            .commands
            .by(who, ctx, who.account_id, command, Settle::Views)
            .await?;
        Ok(committed.events)
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
        let events = self
            .own(who, ctx, || PinCommand::Set {
                password: password.clone(),
                pin_hash: pin_hash.clone(),
            })
            .await?;
        reauthenticated(&events)
    }

    pub async fn remove(
        &self,
        who: &Authenticated,
        password: SecretString,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session()?;
        let events = self
            .own(who, ctx, || PinCommand::Remove {
                password: password.clone(),
            })
            .await?;
        reauthenticated(&events)
    }

    /// Unlocks reporting history for the caller's session; answers until when.
    pub async fn verify(
        &self,
        who: &Authenticated,
        pin: SecretString,
        ctx: &RequestContext,
    ) -> Result<DateTime<Utc>, AppError> {
        let session_id = who.require_session()?;
        let events = self
            .own(who, ctx, || PinCommand::Verify {
                pin: pin.clone(),
                session_id,
            })
            .await?;
        match Outcome::of(&events) {
            Outcome::PinUnlocked { until } => Ok(until),
            _ => Err(AppError::new(ProblemCode::PinInvalid)),
        }
    }
}

fn reauthenticated(events: &[AccountEvent]) -> Result<(), AppError> {
    if Outcome::of(events).is_refused() {
        return Err(AppError::with(
            ProblemCode::ReauthenticationFailed,
            "the password is wrong",
        ));
    }
    Ok(())
}
