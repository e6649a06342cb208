//! argon2id password hashing, off the async runtime and bounded to the number of cores so a
//! login flood queues instead of exhausting memory. Verification reuses one 19 MiB work area per
//! permit: allocating a fresh one per login left the allocator holding hundreds of MiB.

use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use warden_aggregates::account::PasswordVerifier;
use warden_aggregates::shared::PasswordHash;

#[derive(Clone)]
pub struct Argon2Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    /// Work areas for verification, at most one per permit, reused.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Verified against when an email is unknown, so that answer costs what a wrong password does.
    dummy: PasswordHash,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(String);

impl Argon2Passwords {
    /// argon2id with RustCrypto's defaults (19 MiB, t=2, p=1).
    pub fn new(concurrency: usize) -> Result<Self, HashingError> {
        let params = Params::default();
        let dummy = hash_blocking(&params, "warden dummy password for unknown accounts")?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            memory: Arc::new(Mutex::new(Vec::new())),
            dummy,
        })
    }

    pub async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashingError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashingError(e.to_string()))?;
        let mut memory = self.take_memory();
        let params = self.params.clone();
        let password = password.clone();
        let (hashed, memory) = tokio::task::spawn_blocking(move || {
            let hashed = hash_with(&mut memory, &params, password.expose_secret().as_bytes());
            (hashed, memory)
        })
        .await
        .map_err(|e| HashingError(e.to_string()))?;
        self.give_back(memory);
        hashed
    }

    fn take_memory(&self) -> Vec<Block> {
        self.memory
            .lock()
            .ok()
            .and_then(|mut areas| areas.pop())
            .unwrap_or_default()
    }

    fn give_back(&self, memory: Vec<Block>) {
        if let Ok(mut areas) = self.memory.lock() {
            areas.push(memory);
        }
    }

    /// Spends the time of one verification and answers nothing.
    pub async fn verify_dummy(&self, candidate: &SecretString) {
        let dummy = self.dummy.clone();
        let _ = self.verify(&dummy, candidate).await;
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> Result<PasswordHash, HashingError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| PasswordHash(h.to_string()))
        .map_err(|e| HashingError(e.to_string()))
}

#[async_trait]
impl PasswordVerifier for Argon2Passwords {
    async fn verify(&self, hash: &PasswordHash, candidate: &SecretString) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let mut memory = self.take_memory();
        let hash = hash.clone();
        let candidate = candidate.clone();
        let verified = tokio::task::spawn_blocking(move || {
            let matches = verify_with(&mut memory, &hash.0, candidate.expose_secret().as_bytes());
            (matches, memory)
        })
        .await;
        match verified {
            Ok((matches, memory)) => {
                self.give_back(memory);
                matches
            }
            Err(_) => false,
        }
    }
}

/// A new PHC string for `password` with a fresh salt, computed in `memory`.
fn hash_with(
    memory: &mut Vec<Block>,
    params: &Params,
    password: &[u8],
) -> Result<PasswordHash, HashingError> {
    let failed = |e: &dyn std::fmt::Display| HashingError(e.to_string());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0_u8; 64];
    let raw_salt = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut output = vec![0_u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    argon2(params)
        .hash_password_into_with_memory(password, raw_salt, &mut output, &mut memory[..blocks])
        .map_err(|e| failed(&e))?;
    let phc = argon2::PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(params).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(argon2::password_hash::Output::new(&output).map_err(|e| failed(&e))?),
    };
    Ok(PasswordHash(phc.to_string()))
}

/// Recomputes the PHC string's hash of `candidate` in `memory` (grown once to the block count its
/// parameters need) and compares in constant time.
fn verify_with(memory: &mut Vec<Block>, phc: &str, candidate: &[u8]) -> bool {
    let Ok(parsed) = argon2::PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0_u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut output = vec![0_u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        candidate,
        salt,
        &mut output,
        &mut memory[..blocks],
    );
    computed.is_ok() && bool::from(output.ct_eq(expected.as_bytes()))
}

/// One command's passwords: a candidate checked against a hash once is not checked again when
/// the command is decided again (after losing a race, or on state this process had cached), so
/// Argon2 runs once per command. Lives only as long as that command.
pub struct VerifiedOnce {
    inner: Arc<dyn PasswordVerifier>,
    verdicts: Mutex<Vec<(PasswordHash, SecretString, bool)>>,
}

impl VerifiedOnce {
    pub fn new(inner: Arc<dyn PasswordVerifier>) -> Self {
        Self {
            inner,
            verdicts: Mutex::new(Vec::new()),
        }
    }

    fn known(&self, hash: &PasswordHash, candidate: &SecretString) -> Option<bool> {
        let verdicts = self.verdicts.lock().ok()?;
        verdicts.iter().find_map(|(h, c, verdict)| {
            let same: bool = c
                .expose_secret()
                .as_bytes()
                .ct_eq(candidate.expose_secret().as_bytes())
                .into();
            (h == hash && same).then_some(*verdict)
        })
    }
}

#[async_trait]
impl PasswordVerifier for VerifiedOnce {
    async fn verify(&self, hash: &PasswordHash, candidate: &SecretString) -> bool {
        if let Some(verdict) = self.known(hash, candidate) {
            return verdict;
        }
        let verdict = self.inner.verify(hash, candidate).await;
        if let Ok(mut verdicts) = self.verdicts.lock() {
            verdicts.push((hash.clone(), candidate.clone(), verdict));
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let passwords = Argon2Passwords::new(2).expect("params");
        let hash = passwords
            .hash(&SecretString::from("correct horse battery"))
            .await
            .expect("hash");
        assert!(hash.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            passwords
                .verify(&hash, &SecretString::from("correct horse battery"))
                .await
        );
        assert!(!passwords.verify(&hash, &SecretString::from("wrong")).await);
    }

    #[tokio::test]
    async fn hashes_from_the_library_and_from_the_reused_work_area_agree() {
        use argon2::password_hash::PasswordVerifier as _;
        let passwords = Argon2Passwords::new(1).expect("params");
        let secret = SecretString::from("correct horse battery");
        let library = hash_blocking(&Params::default(), "correct horse battery").expect("hash");
        assert!(passwords.verify(&library, &secret).await);
        let ours = passwords.hash(&secret).await.expect("hash");
        let parsed = argon2::PasswordHash::new(&ours.0).expect("a PHC string");
        assert!(argon2(&Params::default())
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert_ne!(
            ours,
            passwords.hash(&secret).await.expect("hash"),
            "fresh salts"
        );
    }
}
