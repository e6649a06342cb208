pub mod account;
pub mod health;
pub mod sessions;
pub mod tokens;
