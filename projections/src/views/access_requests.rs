//! `access_requests_v1`: what locked-out users asked support for, and what support decided.

use async_trait::async_trait;
use sqlx::PgConnection;
use warden_aggregates::account::AccountEvent;

use crate::runtime::projector::{decode, ProjectionError, Projector, StoredEvent};
use crate::views::session_history::account_id;

pub struct AccessRequests;

#[async_trait]
impl Projector for AccessRequests {
    fn name(&self) -> &'static str {
        "access_requests_v1"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["access_requests_v1"]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            AccountEvent::ACCESS_REQUESTED,
            AccountEvent::ACCESS_REQUEST_DECIDED,
        ]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let account_id = account_id(event)?;
        match decode::<AccountEvent>(event)? {
            AccountEvent::AccessRequested {
                request_id,
                reason,
                at,
            } => {
                sqlx::query(
                    "INSERT INTO access_requests_v1 (request_id, account_id, reason, requested_at,
                         status)
                     VALUES ($1, $2, $3, $4, 'open') ON CONFLICT (request_id) DO NOTHING",
                )
                .bind(request_id)
                .bind(account_id)
                .bind(reason.0)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            AccountEvent::AccessRequestDecided {
                request_id,
                approved,
                by,
                at,
            } => {
                sqlx::query(
                    "UPDATE access_requests_v1 SET status = $2, decided_at = $3, decided_by = $4
                     WHERE request_id = $1",
                )
                .bind(request_id)
                .bind(if approved { "approved" } else { "denied" })
                .bind(at)
                .bind(by.as_uuid())
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
