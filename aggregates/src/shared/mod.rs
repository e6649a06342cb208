mod clock;
mod email;
mod error_kind;
mod ids;
mod scope;
mod secrets;

pub use clock::Clock;
pub use email::{Email, EmailError};
pub use error_kind::ErrorKind;
pub use ids::{AccountId, ProviderId, SessionId, TokenId, WorkspaceId};
pub use scope::Scope;
pub use secrets::{PasswordHash, SealedText, TokenHash, TotpCode};
