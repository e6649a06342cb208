mod aggregate;
mod commands;
mod errors;
mod events;
mod services;
#[cfg(test)]
mod tests;

pub use aggregate::{Account, ApiTokenState, LiveSession};
pub use commands::{AccountCommand, NewApiToken, NewSession};
pub use errors::AccountError;
pub use events::{
    AccountEvent, AuthMethod, PasswordChangeVia, PasswordCheckPurpose, SessionEndReason,
};
pub use services::{AccountServices, PasswordVerifier, SecurityPolicy};
