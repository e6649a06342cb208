pub mod clock;
pub mod mail;
pub mod password;
pub mod sealing;
pub mod tokens;
pub mod totp;
