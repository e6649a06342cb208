//! Sealing with AES-256-GCM. The master key seals per-account data keys; a data key seals that
//! account's personal data. Destroying a data key makes its account's sealed values unreadable
//! (crypto-shredding) while the events that carry them stay intact.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use warden_aggregates::shared::SealedText;

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    #[error("the master key must be 32 bytes, base64-encoded")]
    BadMasterKey,
    #[error("sealed value is malformed or was sealed under another key")]
    Unreadable,
}

/// The server's master key.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl MasterKey {
    pub fn from_base64(text: &str) -> Result<Self, SealingError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealingError::BadMasterKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealingError::BadMasterKey)?;
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self(SecretBox::new(Box::new(key)))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.expose_secret())
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.expose_secret()))
    }

    /// A key derived for one purpose, so the master key itself is used only for sealing.
    fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac(self.0.expose_secret(), &[purpose.as_bytes()])
    }

    /// The index under which an email address is reserved: an HMAC, so the reservation table
    /// holds no address and cannot be reversed without the master key.
    pub fn email_index(&self, normalized_email: &str) -> String {
        let key = self.derive("warden/email-index/v1");
        hex::encode(hmac(&key, &[normalized_email.as_bytes()]))
    }

    /// Seals a server secret (a TOTP secret) under the master key, bound to its purpose.
    pub fn seal_secret(&self, purpose: &str, secret: &[u8]) -> SealedText {
        SealedText(seal(&self.cipher(), secret, purpose.as_bytes()))
    }

    pub fn open_secret(&self, purpose: &str, sealed: &SealedText) -> Result<Vec<u8>, SealingError> {
        open(&self.cipher(), &sealed.0, purpose.as_bytes())
    }

    /// The stored form of a short one-time code: an HMAC under a key derived from the master
    /// key, bound to `scope` (the account and what the code is for), so a leaked hash cannot be
    /// brute-forced offline in a million tries.
    pub fn code_hash(&self, scope: &str, code: &str) -> String {
        let key = self.derive("warden/one-time-codes/v1");
        hex::encode(hmac(&key, &[scope.as_bytes(), b"\0", code.as_bytes()]))
    }

    /// A secret Warden computes again from a value it may store instead of storing the secret:
    /// a sign-in attempt's nonce and PKCE verifier from its state, a provider sign-in's session
    /// token from its login code. Bound to `purpose`.
    pub fn derived_secret(&self, purpose: &str, input: &str) -> String {
        let key = self.derive("warden/derived-secrets/v1");
        let mac = hmac(&key, &[purpose.as_bytes(), b"\0", input.as_bytes()]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    }

    /// A number below `modulus` Warden computes again from `input`, like [`Self::derived_secret`]
    /// (an emailed code from its nonce).
    pub fn derived_number(&self, purpose: &str, input: &str, modulus: u64) -> u64 {
        let key = self.derive("warden/derived-numbers/v1");
        let mac = hmac(&key, &[purpose.as_bytes(), b"\0", input.as_bytes()]);
        let mut first = [0u8; 8];
        first.copy_from_slice(&mac[..8]);
        // 2^64 is so much larger than any modulus used that the bias is below 2^-40.
        u64::from_be_bytes(first) % modulus.max(1)
    }

    /// The index under which an identity at a provider is linked: an HMAC of the subject.
    pub fn identity_index(&self, provider: &str, subject: &str) -> String {
        let key = self.derive("warden/identity-index/v1");
        hex::encode(hmac(
            &key,
            &[provider.as_bytes(), b"\0", subject.as_bytes()],
        ))
    }

    /// A new data key for `owner` and its sealed form for storage.
    pub fn new_data_key(&self, owner: &str) -> (DataKey, String) {
        let key = DataKey::generate();
        let sealed = seal(
            &self.cipher(),
            key.0.expose_secret(),
            format!("data-key:{owner}").as_bytes(),
        );
        (key, sealed)
    }

    pub fn open_data_key(&self, owner: &str, sealed: &str) -> Result<DataKey, SealingError> {
        let bytes = open(
            &self.cipher(),
            sealed,
            format!("data-key:{owner}").as_bytes(),
        )?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealingError::Unreadable)?;
        Ok(DataKey(SecretBox::new(Box::new(key))))
    }
}

/// One account's key for its personal data.
pub struct DataKey(SecretBox<[u8; 32]>);

impl DataKey {
    fn generate() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self(SecretBox::new(Box::new(key)))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.expose_secret()))
    }

    pub fn seal(&self, plaintext: &str) -> SealedText {
        SealedText(seal(&self.cipher(), plaintext.as_bytes(), b"personal-data"))
    }

    pub fn open(&self, sealed: &SealedText) -> Result<String, SealingError> {
        let bytes = open(&self.cipher(), &sealed.0, b"personal-data")?;
        String::from_utf8(bytes).map_err(|_| SealingError::Unreadable)
    }
}

/// HMAC-SHA256 over `parts` in order.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn seal(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> String {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ciphertext);
    STANDARD.encode(out)
}

fn open(cipher: &Aes256Gcm, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SealingError> {
    let bytes = STANDARD
        .decode(sealed)
        .map_err(|_| SealingError::Unreadable)?;
    if bytes.len() < NONCE_LEN {
        return Err(SealingError::Unreadable);
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| SealingError::Unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_personal_data_opens_only_with_its_key() {
        let master = MasterKey::generate();
        let (key, stored) = master.new_data_key("a");
        let sealed = key.seal("ada@example.com");
        assert!(!sealed.0.contains("ada"));
        assert_eq!(key.open(&sealed).expect("opens"), "ada@example.com");

        let reopened = master.open_data_key("a", &stored).expect("same owner");
        assert_eq!(reopened.open(&sealed).expect("opens"), "ada@example.com");
        assert!(master.open_data_key("b", &stored).is_err());

        let (other, _) = master.new_data_key("b");
        assert!(other.open(&sealed).is_err());
    }

    #[test]
    fn the_email_index_is_stable_and_keyed() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_eq!(a.email_index("x@y.z"), a.email_index("x@y.z"));
        assert_ne!(a.email_index("x@y.z"), b.email_index("x@y.z"));
    }
}
