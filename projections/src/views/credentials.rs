//! `session_credentials_v1`, `api_tokens_v1` and `reset_tokens_v1`: what bearer authentication
//! and password-reset confirmation look up by token hash. Every Warden process reads these on every request, and
//! an endpoint that revokes waits for this projector before it returns, so a revoked credential
//! is refused everywhere from then on.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;
use warden_aggregates::account::AccountEvent;

use crate::runtime::projector::{decode, ProjectionError, Projector, StoredEvent};
use crate::views::session_history::account_id;

pub struct Credentials;

#[async_trait]
impl Projector for Credentials {
    fn name(&self) -> &'static str {
        "credentials_v1"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "session_credentials_v1",
            "api_tokens_v1",
            "reset_tokens_v1",
            "mfa_challenges_v1",
        ]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            AccountEvent::SESSION_STARTED,
            AccountEvent::SESSION_ENDED,
            AccountEvent::PASSWORD_RESET_REQUESTED,
            AccountEvent::API_TOKEN_CREATED,
            AccountEvent::API_TOKEN_FIRST_USED,
            AccountEvent::API_TOKEN_EXPIRED,
            AccountEvent::API_TOKEN_REVOKED,
            AccountEvent::MFA_CHALLENGE_ISSUED,
            AccountEvent::PIN_VERIFIED,
        ]
    }

    /// Runs of session starts and ends are written as two statements (a start precedes its end
    /// in commit order; the first end wins); any other event first writes the run before it,
    /// then applies alone, so every event sees the rows of the events before it.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut run = SessionRun::default();
        for event in events {
            match event.event_type.as_str() {
                AccountEvent::SESSION_STARTED | AccountEvent::SESSION_ENDED => {
                    let account_id = account_id(event)?;
                    match decode::<AccountEvent>(event)? {
                        AccountEvent::SessionStarted {
                            session_id,
                            token_hash,
                            started_at,
                            expires_at,
                            idle_timeout_secs,
                            enrollment_only,
                            ..
                        } => {
                            run.token_hashes.push(token_hash.0);
                            run.session_ids.push(session_id.as_uuid());
                            run.accounts.push(account_id);
                            run.started.push(started_at);
                            run.expires.push(expires_at);
                            run.idle.push(idle_timeout_secs);
                            run.enrollment_only.push(enrollment_only);
                        }
                        AccountEvent::SessionEnded { session_id, at, .. }
                            if !run.ended_ids.contains(&session_id.as_uuid()) =>
                        {
                            run.ended_ids.push(session_id.as_uuid());
                            run.ended_at.push(at);
                        }
                        _ => {}
                    }
                }
                _ => {
                    std::mem::take(&mut run).write(conn).await?;
                    self.apply(conn, event).await?;
                }
            }
        }
        run.write(conn).await?;
        Ok(())
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let account_id = account_id(event)?;
        let event = decode::<AccountEvent>(event)?;
        write_session(conn, account_id, &event).await?;
        write_api_token(conn, account_id, &event).await?;
        write_lookup(conn, account_id, &event).await?;
        Ok(())
    }
}

/// Session credentials: started, ended, unlocked by the PIN.
async fn write_session(
    conn: &mut PgConnection,
    account_id: Uuid,
    event: &AccountEvent,
) -> Result<(), sqlx::Error> {
    match event {
        AccountEvent::SessionStarted {
            session_id,
            token_hash,
            started_at,
            expires_at,
            idle_timeout_secs,
            enrollment_only,
            ..
        } => {
            sqlx::query(
                "INSERT INTO session_credentials_v1 (token_hash, session_id, account_id,
                     started_at, expires_at, idle_timeout_secs, enrolment_only)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (token_hash) DO NOTHING",
            )
            .bind(&token_hash.0)
            .bind(session_id.as_uuid())
            .bind(account_id)
            .bind(started_at)
            .bind(expires_at)
            .bind(idle_timeout_secs)
            .bind(enrollment_only)
            .execute(&mut *conn)
            .await?;
        }
        AccountEvent::SessionEnded { session_id, at, .. } => {
            sqlx::query(
                "UPDATE session_credentials_v1 SET ended_at = $2
                 WHERE session_id = $1 AND ended_at IS NULL",
            )
            .bind(session_id.as_uuid())
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        AccountEvent::PinVerified {
            session_id,
            unlocked_until,
            ..
        } => {
            sqlx::query(
                "UPDATE session_credentials_v1 SET pin_unlocked_until = $2 WHERE session_id = $1",
            )
            .bind(session_id.as_uuid())
            .bind(unlocked_until)
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// API tokens: created, first used, expired, revoked.
async fn write_api_token(
    conn: &mut PgConnection,
    account_id: Uuid,
    event: &AccountEvent,
) -> Result<(), sqlx::Error> {
    let (sql, token_id, at) = match event {
        AccountEvent::ApiTokenCreated {
            token_id,
            name,
            token_hash,
            scopes,
            expires_at,
            at,
        } => {
            let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
            sqlx::query(
                "INSERT INTO api_tokens_v1 (token_hash, token_id, account_id, name, scopes,
                     created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (token_hash) DO NOTHING",
            )
            .bind(&token_hash.0)
            .bind(token_id.as_uuid())
            .bind(account_id)
            .bind(name)
            .bind(scopes)
            .bind(at)
            .bind(expires_at)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        AccountEvent::ApiTokenFirstUsed { token_id, at } => (
            "UPDATE api_tokens_v1 SET first_used_at = $2
             WHERE token_id = $1 AND first_used_at IS NULL",
            token_id,
            at,
        ),
        AccountEvent::ApiTokenExpired { token_id, .. } => {
            sqlx::query("UPDATE api_tokens_v1 SET expiry_recorded = true WHERE token_id = $1")
                .bind(token_id.as_uuid())
                .execute(&mut *conn)
                .await?;
            return Ok(());
        }
        AccountEvent::ApiTokenRevoked { token_id, at } => (
            "UPDATE api_tokens_v1 SET revoked_at = $2
             WHERE token_id = $1 AND revoked_at IS NULL",
            token_id,
            at,
        ),
        _ => return Ok(()),
    };
    sqlx::query(sql)
        .bind(token_id.as_uuid())
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What a presented reset token or login challenge belongs to.
async fn write_lookup(
    conn: &mut PgConnection,
    account_id: Uuid,
    event: &AccountEvent,
) -> Result<(), sqlx::Error> {
    match event {
        AccountEvent::PasswordResetRequested { token_hash, .. } => {
            sqlx::query(
                "INSERT INTO reset_tokens_v1 (token_hash, account_id) VALUES ($1, $2)
                 ON CONFLICT (token_hash) DO NOTHING",
            )
            .bind(&token_hash.0)
            .bind(account_id)
            .execute(&mut *conn)
            .await?;
        }
        AccountEvent::MfaChallengeIssued {
            challenge_hash,
            expires_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO mfa_challenges_v1 (challenge_hash, account_id, expires_at)
                 VALUES ($1, $2, $3) ON CONFLICT (challenge_hash) DO NOTHING",
            )
            .bind(&challenge_hash.0)
            .bind(account_id)
            .bind(expires_at)
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Session starts and ends of a run of events, as columns.
#[derive(Default)]
struct SessionRun {
    token_hashes: Vec<String>,
    session_ids: Vec<uuid::Uuid>,
    accounts: Vec<uuid::Uuid>,
    started: Vec<DateTime<Utc>>,
    expires: Vec<DateTime<Utc>>,
    idle: Vec<i64>,
    enrollment_only: Vec<bool>,
    ended_ids: Vec<uuid::Uuid>,
    ended_at: Vec<DateTime<Utc>>,
}

impl SessionRun {
    async fn write(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if !self.token_hashes.is_empty() {
            sqlx::query(
                "INSERT INTO session_credentials_v1 (token_hash, session_id, account_id,
                     started_at, expires_at, idle_timeout_secs, enrolment_only)
                 SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::uuid[], $4::timestamptz[],
                                      $5::timestamptz[], $6::bigint[], $7::bool[])
                 ON CONFLICT (token_hash) DO NOTHING",
            )
            .bind(&self.token_hashes)
            .bind(&self.session_ids)
            .bind(&self.accounts)
            .bind(&self.started)
            .bind(&self.expires)
            .bind(&self.idle)
            .bind(&self.enrollment_only)
            .execute(&mut *conn)
            .await?;
        }
        if !self.ended_ids.is_empty() {
            sqlx::query(
                "UPDATE session_credentials_v1 c SET ended_at = e.at
                 FROM UNNEST($1::uuid[], $2::timestamptz[]) AS e(id, at)
                 WHERE c.session_id = e.id AND c.ended_at IS NULL",
            )
            .bind(&self.ended_ids)
            .bind(&self.ended_at)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
