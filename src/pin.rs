//! The reporting PIN: set and removed behind the password, verified per session.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use warden_aggregates::account::{AccountCommand, AccountEvent};
use warden_aggregates::shared::ErrorKind;

use crate::accounts::{AccountsService, Authenticated, RequestContext};
use crate::error::AppError;

fn check_pin(pin: &SecretString) -> Result<(), AppError> {
    let pin = pin.expose_secret();
    if (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AppError::invalid("invalid_pin", "a PIN is 4 to 8 digits"))
    }
}

fn reauthentication_failed() -> AppError {
    AppError::rejected(
        ErrorKind::Forbidden,
        "reauthentication_failed",
        "the password is wrong",
    )
}

impl AccountsService {
    pub async fn set_pin(
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
        let command = || AccountCommand::SetPin {
            password: password.clone(),
            pin_hash: pin_hash.clone(),
        };
        let wanted = |e: &AccountEvent| matches!(e, AccountEvent::PinSet { .. });
        self.act_expecting(who, ctx, command, wanted, reauthentication_failed)
            .await
            .map(|_| ())
    }

    pub async fn remove_pin(
        &self,
        who: &Authenticated,
        password: SecretString,
        ctx: &RequestContext,
    ) -> Result<(), AppError> {
        who.require_session()?;
        let command = || AccountCommand::RemovePin {
            password: password.clone(),
        };
        let wanted = |e: &AccountEvent| matches!(e, AccountEvent::PinRemoved { .. });
        self.act_expecting(who, ctx, command, wanted, reauthentication_failed)
            .await
            .map(|_| ())
    }

    /// Unlocks reporting history for the caller's session; answers until when.
    pub async fn verify_pin(
        &self,
        who: &Authenticated,
        pin: SecretString,
        ctx: &RequestContext,
    ) -> Result<DateTime<Utc>, AppError> {
        let session_id = who.require_session()?;
        let command = || AccountCommand::VerifyPin {
            pin: pin.clone(),
            session_id,
        };
        let committed = self.act(who, who.account_id, ctx, command, false).await?;
        committed
            .events
            .iter()
            .find_map(|e| match e {
                AccountEvent::PinVerified { unlocked_until, .. } => Some(*unlocked_until),
                _ => None,
            })
            .ok_or_else(|| {
                AppError::rejected(ErrorKind::Forbidden, "pin_invalid", "the PIN is wrong")
            })
    }
}
