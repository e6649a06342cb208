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

/// One 32-byte master key and its id: the first bytes of an HMAC under the key, so the id tells
/// nothing about the key.
struct Sealer {
    id: String,
    key: SecretBox<[u8; 32]>,
}

impl Sealer {
    fn new(key: [u8; 32]) -> Self {
        let id = hex::encode(&hmac(&key, &[b"warden/master-key-id/v1"])[..6]);
        Self {
            id,
            key: SecretBox::new(Box::new(key)),
        }
    }

    fn from_base64(text: &str) -> Result<Self, SealingError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealingError::BadMasterKey)?;
        Ok(Self::new(
            bytes.try_into().map_err(|_| SealingError::BadMasterKey)?,
        ))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.key.expose_secret()))
    }
}

/// The server's master keys (docs/adr/0020): the current one seals; the others, named in
/// configuration during and after a rotation, only open. What Warden derives (indexes, code
/// hashes, mailed secrets) and the secrets it seals inside events (TOTP and client secrets) come
/// from the server key instead: a random key kept in the database, sealed under the master key.
/// A rotation re-seals one row per account and the server's row, and nothing derived changes.
pub struct MasterKey {
    sealing: Sealer,
    others: Vec<Sealer>,
    server: SecretBox<[u8; 32]>,
}

impl MasterKey {
    /// One master key alone. Until [`Self::with_server_key`] gives it the database's server key,
    /// it derives from itself, as Warden did before it kept a server key.
    pub fn from_base64(text: &str) -> Result<Self, SealingError> {
        let sealing = Sealer::from_base64(text)?;
        let server = SecretBox::new(Box::new(*sealing.key.expose_secret()));
        Ok(Self {
            sealing,
            others: Vec::new(),
            server,
        })
    }

    pub fn generate() -> Self {
        let key = random_key();
        Self {
            sealing: Sealer::new(key),
            others: Vec::new(),
            server: SecretBox::new(Box::new(key)),
        }
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.sealing.key.expose_secret())
    }

    /// The id of the key that seals.
    pub fn id(&self) -> &str {
        &self.sealing.id
    }

    /// The ids of every key that opens, the sealing one first.
    pub fn ids(&self) -> Vec<String> {
        self.openers().map(|k| k.id.clone()).collect()
    }

    /// The id of a base64 master key.
    pub fn id_of(text: &str) -> Result<String, SealingError> {
        Ok(Sealer::from_base64(text)?.id)
    }

    /// Adds keys (base64 each) that open what they sealed but never seal.
    pub fn also_opening(mut self, keys: &[String]) -> Result<Self, SealingError> {
        for text in keys.iter().filter(|t| !t.trim().is_empty()) {
            let key = Sealer::from_base64(text)?;
            if self.openers().all(|k| k.id != key.id) {
                self.others.push(key);
            }
        }
        Ok(self)
    }

    fn openers(&self) -> impl Iterator<Item = &Sealer> {
        std::iter::once(&self.sealing).chain(self.others.iter())
    }

    /// Opens with whichever key sealed it; returns the plaintext and that key's id.
    fn open_any(&self, sealed: &str, aad: &[u8]) -> Result<(Vec<u8>, &str), SealingError> {
        self.openers()
            .find_map(|k| {
                open(&k.cipher(), sealed, aad)
                    .ok()
                    .map(|p| (p, k.id.as_str()))
            })
            .ok_or(SealingError::Unreadable)
    }

    /// A new random server key, sealed for the database.
    pub fn new_server_key(&self) -> String {
        self.seal_server_key(&random_key())
    }

    /// What this key derived from before a server key was kept, sealed as the server key: on a
    /// database with history, indexes and code hashes stay what they were.
    pub fn own_derivations_as_server_key(&self) -> String {
        self.seal_server_key(self.sealing.key.expose_secret())
    }

    fn seal_server_key(&self, key: &[u8; 32]) -> String {
        seal(&self.sealing.cipher(), key, SERVER_KEY_AAD)
    }

    /// Takes the database's server key. Returns the id of the master key that had sealed it and,
    /// when that is not the current one, the server key sealed again under the current one.
    pub fn with_server_key(
        mut self,
        sealed: &str,
    ) -> Result<(Self, String, Option<String>), SealingError> {
        let (bytes, by) = self.open_any(sealed, SERVER_KEY_AAD)?;
        let by = by.to_string();
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealingError::Unreadable)?;
        let resealed = (by != self.sealing.id).then(|| self.seal_server_key(&key));
        self.server = SecretBox::new(Box::new(key));
        Ok((self, by, resealed))
    }

    /// A key derived from the server key for one purpose.
    fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac(self.server.expose_secret(), &[purpose.as_bytes()])
    }

    fn secrets_cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(
            &self.derive("warden/server-secrets/v1"),
        ))
    }

    /// The index under which an email address is reserved: an HMAC, so the reservation table
    /// holds no address and cannot be reversed without the master key.
    pub fn email_index(&self, normalized_email: &str) -> String {
        let key = self.derive("warden/email-index/v1");
        hex::encode(hmac(&key, &[normalized_email.as_bytes()]))
    }

    /// Seals a server secret (a TOTP secret) under a key derived from the server key, bound to
    /// its purpose: what an event carries does not depend on the master key.
    pub fn seal_secret(&self, purpose: &str, secret: &[u8]) -> SealedText {
        SealedText(seal(&self.secrets_cipher(), secret, purpose.as_bytes()))
    }

    /// Opens a server secret. One sealed before the server key was kept opens with the master
    /// key that sealed it, which must stay among the others while such a secret is in use.
    pub fn open_secret(&self, purpose: &str, sealed: &SealedText) -> Result<Vec<u8>, SealingError> {
        open(&self.secrets_cipher(), &sealed.0, purpose.as_bytes())
            .or_else(|_| self.open_any(&sealed.0, purpose.as_bytes()).map(|(p, _)| p))
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
            &self.sealing.cipher(),
            key.0.expose_secret(),
            data_key_aad(owner).as_bytes(),
        );
        (key, sealed)
    }

    pub fn open_data_key(&self, owner: &str, sealed: &str) -> Result<DataKey, SealingError> {
        let (bytes, _) = self.open_any(sealed, data_key_aad(owner).as_bytes())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealingError::Unreadable)?;
        Ok(DataKey(SecretBox::new(Box::new(key))))
    }

    /// `owner`'s data key sealed again under the current master key, whichever key sealed it.
    pub fn reseal_data_key(&self, owner: &str, sealed: &str) -> Result<String, SealingError> {
        let aad = data_key_aad(owner);
        let (bytes, _) = self.open_any(sealed, aad.as_bytes())?;
        Ok(seal(&self.sealing.cipher(), &bytes, aad.as_bytes()))
    }
}

const SERVER_KEY_AAD: &[u8] = b"server-key:derivation";

fn data_key_aad(owner: &str) -> String {
    format!("data-key:{owner}")
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    key
}

/// One account's key for its personal data.
pub struct DataKey(SecretBox<[u8; 32]>);

impl DataKey {
    fn generate() -> Self {
        Self(SecretBox::new(Box::new(random_key())))
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

#[cfg(test)]
mod rotation_tests {
    use super::*;

    fn key_text() -> String {
        MasterKey::generate().to_base64()
    }

    #[test]
    fn a_rotated_master_key_opens_what_the_old_one_sealed_and_seals_it_again() {
        let (old_text, new_text) = (key_text(), key_text());
        let old = MasterKey::from_base64(&old_text).expect("key");
        let server = old.new_server_key();
        let (old, by, resealed) = old.with_server_key(&server).expect("its own");
        assert_eq!((by.as_str(), resealed), (old.id(), None));
        let (_, sealed) = old.new_data_key("a");
        let secret = old.seal_secret("totp", b"JBSWY3DP");

        let new = MasterKey::from_base64(&new_text).expect("key");
        assert!(new.open_data_key("a", &sealed).is_err(), "a stranger's key");
        let new = new.also_opening(&[old_text]).expect("keys");
        let (new, by, resealed) = new.with_server_key(&server).expect("opens");
        assert_eq!(by, old.id());
        let resealed = resealed.expect("sealed again under the new key");
        assert_eq!(new.email_index("x@y.z"), old.email_index("x@y.z"));
        assert_eq!(
            new.open_secret("totp", &secret).expect("opens"),
            b"JBSWY3DP"
        );
        let data_key = new.reseal_data_key("a", &sealed).expect("opens");

        // Without the old key at all: the re-sealed forms still open, derivations unchanged.
        let alone = MasterKey::from_base64(&new_text).expect("key");
        assert!(alone.open_data_key("a", &sealed).is_err());
        let (alone, by, again) = alone.with_server_key(&resealed).expect("opens");
        assert_eq!((by.as_str(), again), (new.id(), None));
        assert!(alone.open_data_key("a", &data_key).is_ok());
        assert!(
            alone.open_data_key("b", &data_key).is_err(),
            "bound to its owner"
        );
        assert_eq!(alone.email_index("x@y.z"), old.email_index("x@y.z"));
        assert_eq!(
            alone.open_secret("totp", &secret).expect("opens"),
            b"JBSWY3DP"
        );
    }

    #[test]
    fn a_secret_sealed_under_the_master_key_itself_opens_while_that_key_is_known() {
        let old_text = key_text();
        let old = MasterKey::from_base64(&old_text).expect("key");
        // How a TOTP secret was sealed before the server key was kept.
        let legacy = SealedText(seal(&old.sealing.cipher(), b"JBSWY3DP", b"totp"));
        let server = old.own_derivations_as_server_key();
        let index = old.email_index("x@y.z");

        let new = MasterKey::from_base64(&key_text())
            .expect("key")
            .also_opening(&[old_text])
            .expect("keys");
        let (new, _, _) = new.with_server_key(&server).expect("opens");
        assert_eq!(new.email_index("x@y.z"), index, "history keeps its indexes");
        assert_eq!(
            new.open_secret("totp", &legacy).expect("opens"),
            b"JBSWY3DP"
        );
        let without = MasterKey::from_base64(&key_text()).expect("key");
        assert!(without.open_secret("totp", &legacy).is_err());
        assert_ne!(MasterKey::id_of(&new.to_base64()).expect("id"), old.id());
    }
}
