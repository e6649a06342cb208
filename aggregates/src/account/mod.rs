mod aggregate;
mod commands;
mod errors;
mod events;
pub mod login_decision;
mod mfa;
mod services;
#[cfg(test)]
mod tests;

pub use aggregate::{Account, ApiTokenState, LiveSession};
pub use commands::{AccountCommand, MfaProof, NewApiToken, NewSession, Reauthentication};
pub use errors::AccountError;
pub use events::{
    AccountEvent, AuthMethod, MfaFailure, MfaMethod, PasswordChangeVia, PasswordCheckPurpose,
    SessionEndReason,
};
pub use services::{AccountServices, PasswordVerifier, SecurityPolicy, TotpVerifier};
