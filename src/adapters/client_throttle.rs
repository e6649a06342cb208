//! How many unauthenticated attempts one client may make: logins, second-factor steps,
//! registrations and reset requests, per client address and per process. The lock-out guards
//! one account against many guesses; this guards many accounts against one client (credential
//! stuffing, mass registration, mail bombing through reset requests).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::rate_limit::RateLimitInfo;
use crate::app::AppError;

#[derive(Clone)]
pub struct ClientThrottle {
    attempts: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    per_minute: u32,
}

impl ClientThrottle {
    /// `per_minute` attempts per client, in a burst or spread out.
    pub fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            attempts: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
            per_minute: per_minute.get(),
        }
    }

    /// Takes one attempt for `client`, or answers 429 `too_many_attempts` with `Retry-After`
    /// and the `RateLimit-*` headers.
    pub fn check(&self, client: Option<&str>) -> Result<(), AppError> {
        self.attempt(client)
            .map_err(|retry_after| AppError::Throttled {
                info: RateLimitInfo {
                    limit: self.per_minute,
                    remaining: 0,
                    reset_secs: retry_after,
                },
                retry_after,
            })
    }

    /// Takes one attempt for `client`; when it has none left, the seconds until it has.
    /// A request without a known address is not throttled.
    fn attempt(&self, client: Option<&str>) -> Result<(), u64> {
        let Some(ip) = client.and_then(|c| c.parse::<IpAddr>().ok()) else {
            return Ok(());
        };
        self.attempts.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })?;
        // Addresses that stopped trying are forgotten now and then.
        if self.attempts.len() > 100_000 {
            self.attempts.retain_recent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_attempts_and_then_waits_while_another_client_does_not() {
        let throttle = ClientThrottle::new(3);
        for _ in 0..3 {
            assert!(throttle.attempt(Some("203.0.113.7")).is_ok());
        }
        let wait = throttle
            .attempt(Some("203.0.113.7"))
            .expect_err("throttled");
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(throttle.attempt(Some("203.0.113.8")).is_ok());
        assert!(throttle.attempt(None).is_ok());
    }
}
