pub mod account;
pub mod admin;
pub mod health;
pub mod mfa;
pub mod pin;
pub mod sessions;
pub mod tokens;
pub mod workspaces;
