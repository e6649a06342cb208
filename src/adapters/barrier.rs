//! The revocation barrier's shared half, in PostgreSQL (docs/adr/0015): each process's lease and
//! the barrier generation its credential cache has applied, and the generation counter a
//! revoking command takes after it commits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// How long a renewed lease is valid in the database.
pub const LEASE: Duration = Duration::from_secs(10);
/// How long a process trusts its own cache after it sent a renewal. Shorter than [`LEASE`], so a
/// process stops trusting its cache before any other process may stop waiting for it.
pub const TRUSTED_FOR: Duration = Duration::from_secs(8);
/// A lease is renewed at least this often.
pub const RENEW_EVERY: Duration = Duration::from_secs(2);

/// This process's view of its own lease: until when it may answer from its cache.
pub struct Lease {
    origin: Instant,
    /// Nanoseconds after `origin`; 0 = not trusted.
    trusted_until: AtomicU64,
}

impl Default for Lease {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            trusted_until: AtomicU64::new(0),
        }
    }
}

impl Lease {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the cache may be trusted now.
    pub fn is_trusted(&self) -> bool {
        self.nanos(Instant::now()) < self.trusted_until.load(Ordering::Acquire)
    }

    /// A renewal sent at `sent` succeeded.
    pub fn renewed(&self, sent: Instant) {
        let until = self.nanos(sent + TRUSTED_FOR);
        self.trusted_until.fetch_max(until, Ordering::AcqRel);
    }

    /// The lease is lost (the follower stopped, or found it expired).
    pub fn lose(&self) {
        self.trusted_until.store(0, Ordering::Release);
    }
}

fn lease_interval() -> String {
    format!("{} milliseconds", LEASE.as_millis())
}

/// Registers a process (or renews its row) with a fresh lease.
pub async fn register(pool: &PgPool, process: Uuid, host: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO warden_processes (process_id, lease_until, host)
         VALUES ($1, now() + $2::interval, $3)
         ON CONFLICT (process_id) DO UPDATE SET lease_until = EXCLUDED.lease_until",
    )
    .bind(process)
    .bind(lease_interval())
    .bind(host)
    .execute(pool)
    .await?;
    // Rows of processes gone for an hour tell an operator nothing more.
    sqlx::query("DELETE FROM warden_processes WHERE lease_until < now() - interval '1 hour'")
        .execute(pool)
        .await?;
    Ok(())
}

/// Renews the lease and records the generation applied. `false` when the lease had already run
/// out: other processes may have stopped waiting for this one, so its cache is not to be trusted
/// until it has been cleared.
pub async fn renew(
    conn: &mut PgConnection,
    process: Uuid,
    generation: i64,
) -> Result<bool, sqlx::Error> {
    let was_live: Option<bool> = sqlx::query_scalar(
        "UPDATE warden_processes p
         SET lease_until = now() + $2::interval, applied_generation = $3, applied_at = now()
         FROM warden_processes old
         WHERE p.process_id = $1 AND old.process_id = p.process_id
         RETURNING old.lease_until > now()",
    )
    .bind(process)
    .bind(lease_interval())
    .bind(generation)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(was_live.unwrap_or(false))
}

/// Removes the process at shutdown, so no command waits for it.
pub async fn deregister(pool: &PgPool, process: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM warden_processes WHERE process_id = $1")
        .bind(process)
        .execute(pool)
        .await?;
    Ok(())
}

/// The generation a follower has at least applied once it has read the log after this call.
pub async fn current_generation(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    // Before the first nextval, last_value is the start value although nobody took it.
    sqlx::query_scalar(
        "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
         FROM warden_barrier_generation",
    )
    .fetch_one(&mut *conn)
    .await
}

/// Taken by a revoking command after its commit; wakes every follower.
pub async fn next_generation(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT g FROM nextval('warden_barrier_generation') g, pg_notify('warden_events', '')",
    )
    .fetch_one(pool)
    .await
}

/// The processes with a live lease that have not applied `generation` yet.
pub async fn unconfirmed(pool: &PgPool, generation: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT process_id FROM warden_processes
         WHERE lease_until > now() AND applied_generation < $1
         ORDER BY process_id",
    )
    .bind(generation)
    .fetch_all(pool)
    .await
}

/// Waits until every process with a live lease has applied `generation` or lost its lease, at
/// most `timeout`. The processes still unconfirmed at the end, if any.
pub async fn wait(
    pool: &PgPool,
    generation: i64,
    timeout: Duration,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        let left = unconfirmed(pool, generation).await?;
        if left.is_empty() || Instant::now() >= deadline {
            return Ok(left);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_trusted_only_after_a_renewal_and_until_it_is_lost() {
        let lease = Lease::default();
        assert!(!lease.is_trusted());
        lease.renewed(Instant::now());
        assert!(lease.is_trusted());
        lease.lose();
        assert!(!lease.is_trusted());
    }

    #[test]
    fn a_renewal_sent_long_ago_does_not_make_the_lease_trusted() {
        let lease = Lease::default();
        std::thread::sleep(Duration::from_millis(5));
        let Some(long_ago) = Instant::now().checked_sub(TRUSTED_FOR + Duration::from_secs(1))
        else {
            return;
        };
        lease.renewed(long_ago);
        assert!(!lease.is_trusted());
    }
}
