//! `session_history_v1` and `login_failures_v1`: every session of an account, current and ended,
//! and every failed password attempt, for the "login security" screen.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;
use warden_aggregates::account::AccountEvent;

use crate::runtime::projector::{decode, ProjectionError, Projector, StoredEvent};

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
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// Three statements per batch: the started sessions, then the ended ones (a session's start
    /// always precedes its end in commit order; the first end wins, as one at a time), then the
    /// failed attempts.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut batch = Batch::default();
        for event in events {
            let account_id = account_id(event)?;
            match decode::<AccountEvent>(event)? {
                AccountEvent::SessionStarted {
                    session_id,
                    device,
                    method,
                    started_at,
                    expires_at,
                    idle_timeout_secs,
                    sso,
                    ..
                } => {
                    batch.session_ids.push(session_id.as_uuid());
                    batch.accounts.push(account_id);
                    batch.devices.push(device.map(|d| d.0));
                    batch.ips.push(event.metadata_str("ip").map(str::to_owned));
                    batch
                        .user_agents
                        .push(event.metadata_str("user_agent").map(str::to_owned));
                    batch.methods.push(method.as_str().to_owned());
                    batch.started.push(started_at);
                    batch.expires.push(expires_at);
                    batch.idle.push(idle_timeout_secs);
                    batch.providers.push(sso.map(|s| {
                        serde_json::json!({
                            "provider_id": s.provider_id,
                            "issuer": s.issuer,
                            "amr": s.amr,
                            "acr": s.acr,
                        })
                    }));
                }
                AccountEvent::SessionEnded {
                    session_id,
                    reason,
                    at,
                } if !batch.ended_ids.contains(&session_id.as_uuid()) => {
                    batch.ended_ids.push(session_id.as_uuid());
                    batch.ended_at.push(at);
                    batch.end_reasons.push(reason.as_str().to_owned());
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
                    batch.failure_positions.push(event.cursor.global_position);
                    batch.failure_accounts.push(account_id);
                    batch.purposes.push(purpose);
                    batch.counts.push(consecutive_failures as i32);
                    batch
                        .failure_ips
                        .push(event.metadata_str("ip").map(str::to_owned));
                    batch
                        .failure_user_agents
                        .push(event.metadata_str("user_agent").map(str::to_owned));
                    batch.failure_at.push(at);
                }
                _ => {}
            }
        }
        batch.write(conn).await?;
        Ok(())
    }
}

#[derive(Default)]
struct Batch {
    session_ids: Vec<Uuid>,
    accounts: Vec<Uuid>,
    devices: Vec<Option<String>>,
    ips: Vec<Option<String>>,
    user_agents: Vec<Option<String>>,
    methods: Vec<String>,
    started: Vec<DateTime<Utc>>,
    expires: Vec<DateTime<Utc>>,
    idle: Vec<i64>,
    providers: Vec<Option<serde_json::Value>>,
    ended_ids: Vec<Uuid>,
    ended_at: Vec<DateTime<Utc>>,
    end_reasons: Vec<String>,
    failure_positions: Vec<i64>,
    failure_accounts: Vec<Uuid>,
    purposes: Vec<String>,
    counts: Vec<i32>,
    failure_ips: Vec<Option<String>>,
    failure_user_agents: Vec<Option<String>>,
    failure_at: Vec<DateTime<Utc>>,
}

impl Batch {
    async fn write(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if !self.session_ids.is_empty() {
            sqlx::query(
                "INSERT INTO session_history_v1 (session_id, account_id, device, ip, user_agent,
                     method, started_at, expires_at, idle_timeout_secs, provider)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                                      $6::text[], $7::timestamptz[], $8::timestamptz[],
                                      $9::bigint[], $10::jsonb[])
                 ON CONFLICT (session_id) DO NOTHING",
            )
            .bind(&self.session_ids)
            .bind(&self.accounts)
            .bind(&self.devices)
            .bind(&self.ips)
            .bind(&self.user_agents)
            .bind(&self.methods)
            .bind(&self.started)
            .bind(&self.expires)
            .bind(&self.idle)
            .bind(&self.providers)
            .execute(&mut *conn)
            .await?;
        }
        if !self.ended_ids.is_empty() {
            sqlx::query(
                "UPDATE session_history_v1 h SET ended_at = e.at, end_reason = e.reason
                 FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[]) AS e(id, at, reason)
                 WHERE h.session_id = e.id AND h.ended_at IS NULL",
            )
            .bind(&self.ended_ids)
            .bind(&self.ended_at)
            .bind(&self.end_reasons)
            .execute(&mut *conn)
            .await?;
        }
        if !self.failure_positions.is_empty() {
            sqlx::query(
                "INSERT INTO login_failures_v1 (global_position, account_id, purpose,
                     consecutive_failures, ip, user_agent, at)
                 SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::int[],
                                      $5::text[], $6::text[], $7::timestamptz[])
                 ON CONFLICT (global_position) DO NOTHING",
            )
            .bind(&self.failure_positions)
            .bind(&self.failure_accounts)
            .bind(&self.purposes)
            .bind(&self.counts)
            .bind(&self.failure_ips)
            .bind(&self.failure_user_agents)
            .bind(&self.failure_at)
            .execute(&mut *conn)
            .await?;
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
