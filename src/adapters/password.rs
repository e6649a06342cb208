//! argon2id password hashing, off the async runtime and bounded to the number of cores so a
//! login flood queues instead of exhausting memory.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;
use warden_aggregates::account::PasswordVerifier;
use warden_aggregates::shared::PasswordHash;

#[derive(Clone)]
pub struct Argon2Passwords {
    params: Params,
    permits: Arc<Semaphore>,
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
            dummy,
        })
    }

    pub async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashingError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashingError(e.to_string()))?;
        let params = self.params.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_blocking(&params, password.expose_secret()))
            .await
            .map_err(|e| HashingError(e.to_string()))?
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
        let params = self.params.clone();
        let hash = hash.clone();
        let candidate = candidate.clone();
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = argon2::PasswordHash::new(&hash.0) else {
                return false;
            };
            argon2(&params)
                .verify_password(candidate.expose_secret().as_bytes(), &parsed)
                .is_ok()
        })
        .await
        .unwrap_or(false)
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
}
