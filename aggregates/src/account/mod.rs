mod aggregate;
mod api_tokens;
mod commands;
mod errors;
mod events;
mod identities;
pub mod login_decision;
mod mfa;
mod notices;
mod outcome;
mod passkeys;
mod password;
mod pin;
mod profile;
mod reauthentication;
mod services;
mod sessions;
mod support;
#[cfg(test)]
mod tests;

pub use aggregate::Account;
pub use api_tokens::ApiTokenState;
pub use commands::{
    AccountCommand, ApiTokenCommand, IdentityCommand, MfaCommand, MfaProof, NewApiToken,
    NewIdentity, NewPasskey, NewSession, PasskeyAssertion, PasskeyCheck, PasskeyCommand,
    PasswordCommand, PinCommand, ProviderRegistration, Reauthentication, SessionCommand,
    SupportCommand,
};
pub use errors::AccountError;
pub use events::{
    AccountEvent, AuthMethod, MfaFailure, MfaMethod, PasskeyRefusal, PasswordChangeVia,
    PasswordCheckPurpose, SessionEndReason,
};
pub use identities::{LinkVia, LinkedIdentity, ProviderSignIn};
pub use notices::Notice;
pub use outcome::{Outcome, Refusal};
pub use passkeys::StoredPasskey;
pub use services::{AccountServices, PasswordVerifier, SecurityPolicy, TotpVerifier};
pub use sessions::{LiveSession, SessionFilter};
