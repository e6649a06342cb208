//! The "require MFA" sweep: when a workspace turns the policy on, every member's sessions that
//! did not pass a second factor end. A reactor on the log, not a loop in the request: it resumes
//! from its checkpoint after a crash, so a policy that committed is always swept.

use std::collections::HashMap;
use std::sync::OnceLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use warden_aggregates::account::{AccountCommand, SessionCommand};
use warden_aggregates::shared::WorkspaceId;
use warden_aggregates::workspace::WorkspaceEvent;
use warden_projections::{ProjectionError, Reactor, StoredEvent};

use super::command::{Commands, Settle};

/// The reactor is built before the use cases it drives (they need the projections it runs
/// beside), so it gets its command path once they exist.
#[derive(Default)]
pub struct PolicySweep {
    commands: OnceLock<Commands>,
}

impl PolicySweep {
    pub fn attach(&self, commands: Commands) {
        let _ = self.commands.set(commands);
    }

    fn commands(&self) -> Result<&Commands, String> {
        self.commands
            .get()
            .ok_or_else(|| "not attached to the use cases yet".to_string())
    }

    /// Ends the password-only sessions that `workspace`'s members started by `at`.
    async fn sweep(
        &self,
        workspace: WorkspaceId,
        at: DateTime<Utc>,
        metadata: &HashMap<String, String>,
    ) -> Result<(), String> {
        let commands = self.commands()?;
        let state = commands
            .load_workspace(workspace)
            .await
            .map_err(|e| e.to_string())?;
        for member in state.members.keys() {
            let command = || AccountCommand::from(SessionCommand::EndWithoutMfa { started_by: at });
            commands
                .account(*member, command, metadata, Settle::Revocation)
                .await
                .map_err(|e| super::error::AppError::from(e).to_string())?;
        }
        Ok(())
    }
}

#[async_trait]
impl Reactor for PolicySweep {
    fn name(&self) -> &'static str {
        "mfa_policy_sweep"
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[WorkspaceEvent::MFA_POLICY_CHANGED]
    }

    async fn react(&self, event: &StoredEvent) -> Result<(), ProjectionError> {
        let failed = |reason: String| ProjectionError::Reaction {
            cursor: event.cursor,
            reason,
        };
        let changed =
            WorkspaceEvent::deserialize(&*event.payload).map_err(|e| failed(e.to_string()))?;
        let WorkspaceEvent::MfaPolicyChanged {
            required: true, at, ..
        } = changed
        else {
            return Ok(());
        };
        let workspace = uuid::Uuid::parse_str(&event.aggregate_id)
            .map(WorkspaceId)
            .map_err(|e| failed(e.to_string()))?;
        // The sessions end on behalf of whoever turned the policy on, from where they did.
        let mut metadata: HashMap<String, String> = event
            .metadata
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        metadata.insert("reaction_to".into(), event.cursor.to_string());
        self.sweep(workspace, at, &metadata).await.map_err(failed)
    }
}
