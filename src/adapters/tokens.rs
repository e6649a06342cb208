//! Bearer credentials: 256 random bits behind a type prefix, stored only as their SHA-256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use warden_aggregates::shared::TokenHash;

pub const SESSION_PREFIX: &str = "wss_";
pub const RESET_PREFIX: &str = "wpr_";
pub const API_PREFIX: &str = "wat_";

/// A fresh credential and the hash that is stored in its place.
pub fn mint(prefix: &str) -> (SecretString, TokenHash) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&token);
    (SecretString::from(token), hash)
}

pub fn hash(token: &str) -> TokenHash {
    TokenHash(hex::encode(Sha256::digest(token.as_bytes())))
}

/// The hash of a presented credential, if it has the expected prefix and shape.
pub fn hash_presented(token: &SecretString, prefix: &str) -> Option<TokenHash> {
    let token = token.expose_secret();
    let body = token.strip_prefix(prefix)?;
    let well_formed = body.len() == 43
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| hash(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_hashes_to_its_stored_hash_and_tokens_differ() {
        let (a, hash_a) = mint(SESSION_PREFIX);
        let (b, _) = mint(SESSION_PREFIX);
        assert!(a.expose_secret().starts_with(SESSION_PREFIX));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(hash_presented(&a, SESSION_PREFIX), Some(hash_a));
        assert_eq!(hash_presented(&a, RESET_PREFIX), None);
        assert_eq!(
            hash_presented(&SecretString::from("wss_short"), SESSION_PREFIX),
            None
        );
    }
}
