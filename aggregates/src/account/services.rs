use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;

use crate::shared::{Clock, PasswordHash, SealedText, TotpCode};

/// Checks a candidate password against a stored hash. The production adapter runs argon2id off
/// the async runtime with bounded concurrency.
#[async_trait]
pub trait PasswordVerifier: Send + Sync {
    async fn verify(&self, hash: &PasswordHash, candidate: &SecretString) -> bool;
}

/// Checks TOTP codes against a sealed secret. Answers the time step the code belongs to when
/// it matches the current or the previous step (RFC 6238, 30 s, 6 digits, SHA-1).
pub trait TotpVerifier: Send + Sync {
    fn matching_step(
        &self,
        secret: &SealedText,
        code: &TotpCode,
        now: DateTime<Utc>,
    ) -> Option<u64>;
}

/// The numbers of DESIGN.md §5, configurable per deployment.
#[derive(Debug, Clone)]
pub struct SecurityPolicy {
    pub session_idle_timeout: Duration,
    pub session_absolute_ttl: Duration,
    /// Consecutive password failures after which refusal windows start.
    pub lockout_threshold: u32,
    pub lockout_base: Duration,
    pub lockout_max: Duration,
    /// Consecutive password failures that lock the account until an administrator unlocks it.
    pub hard_lock_threshold: u32,
    pub mfa_challenge_ttl: Duration,
    /// Wrong codes one login challenge tolerates.
    pub mfa_challenge_attempts: u32,
    /// Consecutive second-factor failures (across challenges) that lock the account.
    pub mfa_lock_threshold: u32,
    /// How long a right PIN unlocks reporting history for a session.
    pub pin_unlock: Duration,
    /// Wrong PINs in a row that lock PIN verification, and for how long.
    pub pin_attempts: u32,
    pub pin_lockout: Duration,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        Self {
            session_idle_timeout: Duration::minutes(30),
            session_absolute_ttl: Duration::hours(12),
            lockout_threshold: 10,
            lockout_base: Duration::minutes(1),
            lockout_max: Duration::minutes(15),
            hard_lock_threshold: 100,
            mfa_challenge_ttl: Duration::minutes(5),
            mfa_challenge_attempts: 5,
            mfa_lock_threshold: 20,
            pin_unlock: Duration::minutes(15),
            pin_attempts: 5,
            pin_lockout: Duration::minutes(15),
        }
    }
}

impl SecurityPolicy {
    /// The refusal window after `failures` consecutive failures: none below the threshold, then
    /// the base doubling with each further failure up to the maximum.
    pub fn lockout_window(&self, failures: u32) -> Option<Duration> {
        if failures < self.lockout_threshold {
            return None;
        }
        let doublings = (failures - self.lockout_threshold).min(20);
        let window = self.lockout_base * 2_i32.pow(doublings);
        Some(window.min(self.lockout_max))
    }
}

pub struct AccountServices {
    pub clock: Arc<dyn Clock>,
    pub passwords: Arc<dyn PasswordVerifier>,
    pub totp: Arc<dyn TotpVerifier>,
    pub policy: SecurityPolicy,
}
