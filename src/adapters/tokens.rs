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

/// The SHA-256 (hex) of a value handed out that is looked up by its hash (a WebAuthn challenge).
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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

pub const CHALLENGE_PREFIX: &str = "wmc_";

/// A six-digit code for mail, uniformly drawn.
/// A fresh random value that is not a secret on its own: what the mail outbox derives a mailed
/// secret from, under a key only Warden holds.
pub fn mint_nonce() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}
/// Recovery codes: 24 base32 characters (120 bits), shown in four groups of six.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const RECOVERY_CHARS: usize = 24;

/// `count` fresh recovery codes, each with the hash that is stored in its place.
pub fn mint_recovery_codes(count: usize) -> Vec<(SecretString, String)> {
    (0..count)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_CHARS];
            OsRng.fill_bytes(&mut bytes);
            let chars: String = bytes
                .iter()
                .map(|b| RECOVERY_ALPHABET[(b & 31) as usize] as char)
                .collect();
            let shown = chars
                .as_bytes()
                .chunks(6)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-");
            let hash = recovery_code_hash(&shown).unwrap_or_default();
            (SecretString::from(shown), hash)
        })
        .collect()
}

/// The stored form of a recovery code as typed (any case, dashes and spaces ignored), or `None`
/// when it cannot be one.
pub fn recovery_code_hash(typed: &str) -> Option<String> {
    let normalized: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid = normalized.len() == RECOVERY_CHARS
        && normalized.bytes().all(|b| RECOVERY_ALPHABET.contains(&b));
    valid.then(|| hex::encode(Sha256::digest(normalized.as_bytes())))
}

#[cfg(test)]
mod recovery_tests {
    use super::*;

    #[test]
    fn recovery_codes_are_distinct_and_hash_however_they_are_typed() {
        let codes = mint_recovery_codes(10);
        assert_eq!(codes.len(), 10);
        let (code, hash) = &codes[0];
        assert_eq!(code.expose_secret().len(), 24 + 3);
        assert_eq!(
            recovery_code_hash(code.expose_secret()).as_ref(),
            Some(hash)
        );
        let sloppy = code.expose_secret().to_uppercase().replace('-', " ");
        assert_eq!(recovery_code_hash(&sloppy).as_ref(), Some(hash));
        let unique: std::collections::HashSet<_> = codes.iter().map(|(_, h)| h).collect();
        assert_eq!(unique.len(), 10);
        assert_eq!(recovery_code_hash("not-a-code"), None);
    }
}
