use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::commands::WorkspaceCommand;
use super::errors::WorkspaceError;
use super::events::{Role, WorkspaceEvent};
use super::WorkspaceServices;
use crate::shared::{AccountId, WorkspaceId};

/// An environment: its members and their roles, and the policies its account holders set.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: Option<WorkspaceId>,
    pub name: String,
    pub members: BTreeMap<AccountId, Role>,
    pub mfa_required: bool,
    /// When the policy that requires MFA was last turned on: password-only sessions started by
    /// then are ended by it.
    #[serde(default)]
    pub mfa_required_since: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub archival: Archival,
}

/// Retention: after how many days conversations are purged, and the last purge a data service
/// acknowledged.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Archival {
    pub days: Option<u32>,
    /// When the retention was last changed.
    pub since: Option<DateTime<Utc>>,
    pub last_purge_at: Option<DateTime<Utc>>,
    pub last_cutoff: Option<DateTime<Utc>>,
}

impl Workspace {
    pub fn role_of(&self, account: AccountId) -> Option<Role> {
        self.members.get(&account).copied()
    }

    /// Members see the workspace; everyone else is told it does not exist.
    fn member(&self, by: AccountId) -> Result<Role, WorkspaceError> {
        self.role_of(by).ok_or(WorkspaceError::NotFound)
    }

    fn holder(&self, by: AccountId) -> Result<(), WorkspaceError> {
        match self.member(by)? {
            Role::AccountHolder => Ok(()),
            _ => Err(WorkspaceError::AccountHolderRequired),
        }
    }

    fn holders(&self) -> usize {
        self.members
            .values()
            .filter(|r| **r == Role::AccountHolder)
            .count()
    }

    /// Refuses a change that would leave the workspace without an account holder.
    fn keeps_a_holder(
        &self,
        account: AccountId,
        new_role: Option<Role>,
    ) -> Result<(), WorkspaceError> {
        let was_holder = self.role_of(account) == Some(Role::AccountHolder);
        let stays_holder = new_role == Some(Role::AccountHolder);
        if was_holder && !stays_holder && self.holders() == 1 {
            return Err(WorkspaceError::LastAccountHolder);
        }
        Ok(())
    }
}

impl Aggregate for Workspace {
    const TYPE: &'static str = "workspace";
    type Command = WorkspaceCommand;
    type Event = WorkspaceEvent;
    type Error = WorkspaceError;
    type Services = WorkspaceServices;

    async fn handle(
        &mut self,
        command: WorkspaceCommand,
        svc: &WorkspaceServices,
        sink: &EventSink<Self>,
    ) -> Result<(), WorkspaceError> {
        let event = self.decide(command, svc.clock.now())?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: WorkspaceEvent) {
        match event {
            WorkspaceEvent::Created {
                workspace_id,
                name,
                by,
                at,
            } => {
                self.id = Some(workspace_id);
                self.name = name;
                self.created_at = Some(at);
                self.members.insert(by, Role::AccountHolder);
            }
            WorkspaceEvent::MemberAdded {
                account_id, role, ..
            }
            | WorkspaceEvent::RoleChanged {
                account_id, role, ..
            } => {
                self.members.insert(account_id, role);
            }
            WorkspaceEvent::MemberRemoved { account_id, .. } => {
                self.members.remove(&account_id);
            }
            WorkspaceEvent::MfaPolicyChanged { required, at, .. } => {
                self.mfa_required = required;
                self.mfa_required_since = required.then_some(at);
            }
            WorkspaceEvent::ArchivalDaysSet { days, at, .. } => {
                self.archival.days = days;
                self.archival.since = Some(at);
            }
            WorkspaceEvent::PurgeRecorded { cutoff, at, .. } => {
                self.archival.last_purge_at = Some(at);
                self.archival.last_cutoff = Some(cutoff);
            }
        }
    }
}

/// Every workspace command records exactly one event, or is refused.
impl Workspace {
    fn decide(
        &self,
        command: WorkspaceCommand,
        at: DateTime<Utc>,
    ) -> Result<WorkspaceEvent, WorkspaceError> {
        if let WorkspaceCommand::Create {
            workspace_id,
            name,
            by,
        } = command
        {
            if self.id.is_some() {
                return Err(WorkspaceError::AlreadyCreated);
            }
            return Ok(WorkspaceEvent::Created {
                workspace_id,
                name,
                by,
                at,
            });
        }
        if self.id.is_none() {
            return Err(WorkspaceError::NotFound);
        }
        match command {
            WorkspaceCommand::Create { .. } => Err(WorkspaceError::AlreadyCreated),
            WorkspaceCommand::AddMember { .. }
            | WorkspaceCommand::ChangeRole { .. }
            | WorkspaceCommand::RemoveMember { .. } => self.decide_membership(command, at),
            other => self.decide_settings(other, at),
        }
    }

    /// Members and roles: only an account holder changes them, and one always remains.
    fn decide_membership(
        &self,
        command: WorkspaceCommand,
        at: DateTime<Utc>,
    ) -> Result<WorkspaceEvent, WorkspaceError> {
        match command {
            WorkspaceCommand::AddMember {
                account_id,
                role,
                by,
            } => {
                self.holder(by)?;
                if self.members.contains_key(&account_id) {
                    return Err(WorkspaceError::AlreadyMember);
                }
                Ok(WorkspaceEvent::MemberAdded {
                    account_id,
                    role,
                    by,
                    at,
                })
            }
            WorkspaceCommand::ChangeRole {
                account_id,
                role,
                by,
            } => {
                self.holder(by)?;
                self.existing_member(account_id)?;
                self.keeps_a_holder(account_id, Some(role))?;
                Ok(WorkspaceEvent::RoleChanged {
                    account_id,
                    role,
                    by,
                    at,
                })
            }
            WorkspaceCommand::RemoveMember { account_id, by } => {
                self.holder(by)?;
                self.existing_member(account_id)?;
                self.keeps_a_holder(account_id, None)?;
                Ok(WorkspaceEvent::MemberRemoved { account_id, by, at })
            }
            other => self.decide_settings(other, at),
        }
    }

    /// The MFA policy and archival.
    fn decide_settings(
        &self,
        command: WorkspaceCommand,
        at: DateTime<Utc>,
    ) -> Result<WorkspaceEvent, WorkspaceError> {
        match command {
            WorkspaceCommand::RequireMfa { required, by } => {
                self.holder(by)?;
                Ok(WorkspaceEvent::MfaPolicyChanged { required, by, at })
            }
            WorkspaceCommand::SetArchivalDays { days, by } => {
                self.holder(by)?;
                if days.is_some_and(|d| !(1..=3650).contains(&d)) {
                    return Err(WorkspaceError::ArchivalDaysOutOfRange);
                }
                Ok(WorkspaceEvent::ArchivalDaysSet { days, by, at })
            }
            WorkspaceCommand::RecordPurge { cutoff, counts, by } => {
                if self.archival.days.is_none() {
                    return Err(WorkspaceError::ArchivalOff);
                }
                if cutoff > at {
                    return Err(WorkspaceError::CutoffInFuture);
                }
                Ok(WorkspaceEvent::PurgeRecorded {
                    cutoff,
                    counts,
                    by,
                    at,
                })
            }
            // Creation and membership are decided before this is asked.
            _ => Err(WorkspaceError::AlreadyCreated),
        }
    }

    fn existing_member(&self, account_id: AccountId) -> Result<(), WorkspaceError> {
        self.members
            .contains_key(&account_id)
            .then_some(())
            .ok_or(WorkspaceError::MemberNotFound)
    }
}
