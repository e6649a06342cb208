//! The per-token request limit: a sliding-window log in PostgreSQL, exact across every Warden
//! process on the database (docs/adr/0005).

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::app::AppError;

pub const LIMIT: i32 = 60;
pub const WINDOW_SECS: i64 = 60;

/// What the `RateLimit-*` headers of a token-authenticated response say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the oldest request in the window leaves it.
    pub reset_secs: u64,
}

#[derive(Debug, Clone, Copy)]
pub enum Decision {
    Allowed(RateLimitInfo),
    Refused {
        info: RateLimitInfo,
        retry_after: u64,
        /// The first refusal this minute: worth an event.
        record: bool,
    },
}

pub async fn take(pool: &PgPool, token_id: Uuid, now: DateTime<Utc>) -> Result<Decision, AppError> {
    let (allowed, remaining, oldest, record): (bool, i32, Option<DateTime<Utc>>, bool) =
        sqlx::query_as(
            "SELECT allowed, remaining, oldest, record_refusal
             FROM take_rate_slot($1, $2, $3, make_interval(secs => $4))",
        )
        .bind(token_id)
        .bind(now)
        .bind(LIMIT)
        .bind(WINDOW_SECS as f64)
        .fetch_one(pool)
        .await?;
    let until_free = oldest
        .map(|o| o + Duration::seconds(WINDOW_SECS) - now)
        .unwrap_or_else(|| Duration::seconds(WINDOW_SECS));
    // Whole seconds, rounded up: a client that waits this long is let in.
    let seconds = ((until_free.num_milliseconds().max(0) + 999) / 1000).max(1) as u64;
    let info = RateLimitInfo {
        limit: LIMIT as u32,
        remaining: remaining.max(0) as u32,
        reset_secs: seconds,
    };
    Ok(if allowed {
        Decision::Allowed(info)
    } else {
        Decision::Refused {
            info,
            retry_after: seconds,
            record,
        }
    })
}
