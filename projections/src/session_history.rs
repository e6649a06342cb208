//! `session_history_v1` and `login_failures_v1`: every session of an account, current and ended,
//! and every failed password attempt, for the "login security" screen.

use async_trait::async_trait;
use sqlx::PgConnection;
use uuid::Uuid;
use warden_aggregates::account::AccountEvent;

use crate::projector::{decode, ProjectionError, Projector, StoredEvent};

pub struct SessionHistory;

#[async_trait]
impl Projector for SessionHistory {
    fn name(&self) -> &'static str {
        "session_history_v1"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["session_history_v1", "login_failures_v1"]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            AccountEvent::SESSION_STARTED,
            AccountEvent::SESSION_ENDED,
            AccountEvent::PASSWORD_CHECK_FAILED,
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
                device,
                method,
                started_at,
                expires_at,
                idle_timeout_secs,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO session_history_v1 (session_id, account_id, device, ip, user_agent,
                         method, started_at, expires_at, idle_timeout_secs)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (session_id) DO NOTHING",
                )
                .bind(session_id.as_uuid())
                .bind(account_id)
                .bind(device.map(|d| d.0))
                .bind(event.metadata_str("ip"))
                .bind(event.metadata_str("user_agent"))
                .bind(method.as_str())
                .bind(started_at)
                .bind(expires_at)
                .bind(idle_timeout_secs)
                .execute(&mut *conn)
                .await?;
            }
            AccountEvent::SessionEnded {
                session_id,
                reason,
                at,
            } => {
                sqlx::query(
                    "UPDATE session_history_v1 SET ended_at = $2, end_reason = $3
                     WHERE session_id = $1 AND ended_at IS NULL",
                )
                .bind(session_id.as_uuid())
                .bind(at)
                .bind(reason.as_str())
                .execute(&mut *conn)
                .await?;
            }
            AccountEvent::PasswordCheckFailed {
                purpose,
                consecutive_failures,
                at,
            } => {
                let purpose = serde_json::to_value(purpose)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                sqlx::query(
                    "INSERT INTO login_failures_v1 (global_position, account_id, purpose,
                         consecutive_failures, ip, user_agent, at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (global_position) DO NOTHING",
                )
                .bind(event.cursor.global_position)
                .bind(account_id)
                .bind(purpose)
                .bind(consecutive_failures as i32)
                .bind(event.metadata_str("ip"))
                .bind(event.metadata_str("user_agent"))
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

pub(crate) fn account_id(event: &StoredEvent) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| ProjectionError::Decode {
        cursor: event.cursor,
        event_type: event.event_type.clone(),
        source: serde::de::Error::custom(e),
    })
}
