use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::shared::{AccountId, WorkspaceId};

/// A member's role. Account holders manage members and settings; supervisors also read the
/// workspace's audit log; agents read the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    AccountHolder,
    Supervisor,
    Agent,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AccountHolder => "account_holder",
            Self::Supervisor => "supervisor",
            Self::Agent => "agent",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::AccountHolder, Self::Supervisor, Self::Agent]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkspaceEvent {
    Created {
        workspace_id: WorkspaceId,
        name: String,
        by: AccountId,
        at: DateTime<Utc>,
    },
    MemberAdded {
        account_id: AccountId,
        role: Role,
        by: AccountId,
        at: DateTime<Utc>,
    },
    RoleChanged {
        account_id: AccountId,
        role: Role,
        by: AccountId,
        at: DateTime<Utc>,
    },
    MemberRemoved {
        account_id: AccountId,
        by: AccountId,
        at: DateTime<Utc>,
    },
    MfaPolicyChanged {
        required: bool,
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// Conversations are archived (purged) after `days`; `None` keeps them forever.
    ArchivalDaysSet {
        days: Option<u32>,
        by: AccountId,
        at: DateTime<Utc>,
    },
    /// A data service purged everything older than `cutoff` and says how much.
    PurgeRecorded {
        cutoff: DateTime<Utc>,
        counts: BTreeMap<String, u64>,
        by: AccountId,
        at: DateTime<Utc>,
    },
}

impl WorkspaceEvent {
    pub const CREATED: &'static str = "workspace.created";
    pub const MEMBER_ADDED: &'static str = "workspace.member.added";
    pub const ROLE_CHANGED: &'static str = "workspace.member.role_changed";
    pub const MEMBER_REMOVED: &'static str = "workspace.member.removed";
    pub const MFA_POLICY_CHANGED: &'static str = "workspace.mfa_policy.changed";
    pub const ARCHIVAL_DAYS_SET: &'static str = "workspace.archival.days_set";
    pub const PURGE_RECORDED: &'static str = "workspace.archival.purge_recorded";
}

impl DomainEvent for WorkspaceEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => Self::CREATED,
            Self::MemberAdded { .. } => Self::MEMBER_ADDED,
            Self::RoleChanged { .. } => Self::ROLE_CHANGED,
            Self::MemberRemoved { .. } => Self::MEMBER_REMOVED,
            Self::MfaPolicyChanged { .. } => Self::MFA_POLICY_CHANGED,
            Self::ArchivalDaysSet { .. } => Self::ARCHIVAL_DAYS_SET,
            Self::PurgeRecorded { .. } => Self::PURGE_RECORDED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
