mod api_tokens;
mod fixtures;
mod mfa;
mod outcome;
mod password;
mod pin;
mod sessions;
mod support;
