//! `session_credentials_v1` and `reset_tokens_v1`: what bearer authentication and password-reset
//! confirmation look up by token hash. Every Warden process reads these on every request, and
//! an endpoint that revokes waits for this projector before it returns, so a revoked credential
//! is refused everywhere from then on.

use async_trait::async_trait;
use sqlx::PgConnection;
use warden_aggregates::account::AccountEvent;

use crate::projector::{decode, ProjectionError, Projector, StoredEvent};
use crate::session_history::account_id;

pub struct Credentials;

#[async_trait]
impl Projector for Credentials {
    fn name(&self) -> &'static str {
        "credentials_v1"
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            AccountEvent::SESSION_STARTED,
            AccountEvent::SESSION_ENDED,
            AccountEvent::PASSWORD_RESET_REQUESTED,
        ]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let account_id = account_id(event)?;
        match decode::<AccountEvent>(event)? {
            AccountEvent::SessionStarted {
                session_id,
                token_hash,
                started_at,
                expires_at,
                idle_timeout_secs,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO session_credentials_v1 (token_hash, session_id, account_id,
                         started_at, expires_at, idle_timeout_secs)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (token_hash) DO NOTHING",
                )
                .bind(token_hash.0)
                .bind(session_id.as_uuid())
                .bind(account_id)
                .bind(started_at)
                .bind(expires_at)
                .bind(idle_timeout_secs)
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
            AccountEvent::PasswordResetRequested { token_hash, .. } => {
                sqlx::query(
                    "INSERT INTO reset_tokens_v1 (token_hash, account_id) VALUES ($1, $2)
                     ON CONFLICT (token_hash) DO NOTHING",
                )
                .bind(token_hash.0)
                .bind(account_id)
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
