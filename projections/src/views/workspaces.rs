//! `workspaces_v1` and `workspace_members_v1`: workspaces, their members and roles, and whether
//! they require MFA.

use async_trait::async_trait;
use sqlx::PgConnection;
use uuid::Uuid;
use warden_aggregates::workspace::WorkspaceEvent;

use crate::runtime::projector::{decode, ProjectionError, Projector, StoredEvent};

pub struct Workspaces;

pub(crate) fn workspace_id(event: &StoredEvent) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| ProjectionError::Decode {
        cursor: event.cursor,
        event_type: event.event_type.clone(),
        source: serde::de::Error::custom(e),
    })
}

#[async_trait]
impl Projector for Workspaces {
    fn name(&self) -> &'static str {
        "workspaces_v1"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["workspaces_v1", "workspace_members_v1"]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            WorkspaceEvent::CREATED,
            WorkspaceEvent::MEMBER_ADDED,
            WorkspaceEvent::ROLE_CHANGED,
            WorkspaceEvent::MEMBER_REMOVED,
            WorkspaceEvent::MFA_POLICY_CHANGED,
        ]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let workspace = workspace_id(event)?;
        let member = |account: Uuid, role: &'static str, at| {
            sqlx::query(
                "INSERT INTO workspace_members_v1 (workspace_id, account_id, role, since)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (workspace_id, account_id) DO UPDATE SET role = EXCLUDED.role",
            )
            .bind(workspace)
            .bind(account)
            .bind(role)
            .bind(at)
        };
        match decode::<WorkspaceEvent>(event)? {
            WorkspaceEvent::Created { name, by, at, .. } => {
                sqlx::query(
                    "INSERT INTO workspaces_v1 (workspace_id, name, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (workspace_id) DO NOTHING",
                )
                .bind(workspace)
                .bind(name)
                .bind(at)
                .execute(&mut *conn)
                .await?;
                member(by.as_uuid(), "account_holder", at)
                    .execute(&mut *conn)
                    .await?;
            }
            WorkspaceEvent::MemberAdded {
                account_id,
                role,
                at,
                ..
            }
            | WorkspaceEvent::RoleChanged {
                account_id,
                role,
                at,
                ..
            } => {
                member(account_id.as_uuid(), role.as_str(), at)
                    .execute(&mut *conn)
                    .await?;
            }
            WorkspaceEvent::MemberRemoved { account_id, .. } => {
                sqlx::query(
                    "DELETE FROM workspace_members_v1 WHERE workspace_id = $1 AND account_id = $2",
                )
                .bind(workspace)
                .bind(account_id.as_uuid())
                .execute(&mut *conn)
                .await?;
            }
            WorkspaceEvent::MfaPolicyChanged { required, .. } => {
                sqlx::query("UPDATE workspaces_v1 SET mfa_required = $2 WHERE workspace_id = $1")
                    .bind(workspace)
                    .bind(required)
                    .execute(&mut *conn)
                    .await?;
            }
            WorkspaceEvent::ArchivalDaysSet { .. } | WorkspaceEvent::PurgeRecorded { .. } => {}
        }
        Ok(())
    }
}
