use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::shared::{AccountId, WorkspaceId};

use super::events::Role;

/// What a member asks of a workspace; `by` is the caller, whose role the workspace checks.
#[derive(Debug, Clone)]
pub enum WorkspaceCommand {
    Create {
        workspace_id: WorkspaceId,
        name: String,
        by: AccountId,
    },
    AddMember {
        account_id: AccountId,
        role: Role,
        by: AccountId,
    },
    ChangeRole {
        account_id: AccountId,
        role: Role,
        by: AccountId,
    },
    RemoveMember {
        account_id: AccountId,
        by: AccountId,
    },
    RequireMfa {
        required: bool,
        by: AccountId,
    },
    SetArchivalDays {
        days: Option<u32>,
        by: AccountId,
    },
    /// From a data service (checked at the edge: an admin or an `archival` token).
    RecordPurge {
        cutoff: DateTime<Utc>,
        counts: BTreeMap<String, u64>,
        by: AccountId,
    },
}
