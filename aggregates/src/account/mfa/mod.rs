mod challenge;
mod email_code;
mod recovery_codes;
mod state;
mod totp;

pub(super) use challenge::NewChallenge;
pub(super) use state::MfaState;
