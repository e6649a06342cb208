use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::shared::{AccountId, Clock, WorkspaceId};

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0)
            .single()
            .expect("valid")
    }
}

fn at() -> DateTime<Utc> {
    FixedClock.now()
}

fn framework() -> TestFramework<Workspace> {
    TestFramework::with(WorkspaceServices {
        clock: Arc::new(FixedClock),
    })
}

fn account(n: u128) -> AccountId {
    AccountId(Uuid::from_u128(n))
}

const HOLDER: u128 = 1;
const SUPERVISOR: u128 = 2;
const AGENT: u128 = 3;
const STRANGER: u128 = 4;

fn staffed() -> Vec<WorkspaceEvent> {
    vec![
        WorkspaceEvent::Created {
            workspace_id: WorkspaceId(Uuid::from_u128(100)),
            name: "Support".into(),
            by: account(HOLDER),
            at: at(),
        },
        WorkspaceEvent::MemberAdded {
            account_id: account(SUPERVISOR),
            role: Role::Supervisor,
            by: account(HOLDER),
            at: at(),
        },
        WorkspaceEvent::MemberAdded {
            account_id: account(AGENT),
            role: Role::Agent,
            by: account(HOLDER),
            at: at(),
        },
    ]
}

/// Every managing command, by every kind of caller: only account holders may; non-members are
/// told the workspace does not exist.
#[tokio::test]
async fn only_account_holders_manage_and_strangers_see_nothing() {
    let commands = |by: AccountId| {
        vec![
            WorkspaceCommand::AddMember {
                account_id: account(50),
                role: Role::Agent,
                by,
            },
            WorkspaceCommand::ChangeRole {
                account_id: account(AGENT),
                role: Role::Supervisor,
                by,
            },
            WorkspaceCommand::RemoveMember {
                account_id: account(AGENT),
                by,
            },
            WorkspaceCommand::RequireMfa { required: true, by },
        ]
    };
    for (caller, expected) in [
        (SUPERVISOR, Some(WorkspaceError::AccountHolderRequired)),
        (AGENT, Some(WorkspaceError::AccountHolderRequired)),
        (STRANGER, Some(WorkspaceError::NotFound)),
        (HOLDER, None),
    ] {
        for command in commands(account(caller)) {
            let result = framework()
                .given(staffed())
                .when_async(command.clone())
                .await
                .inspect_result();
            match &expected {
                Some(error) => assert_eq!(result, Err(error.clone()), "{caller} {command:?}"),
                None => assert!(result.is_ok_and(|e| e.len() == 1), "{caller} {command:?}"),
            }
        }
    }
}

#[tokio::test]
async fn the_last_account_holder_cannot_leave_or_step_down() {
    framework()
        .given(staffed())
        .when_async(WorkspaceCommand::RemoveMember {
            account_id: account(HOLDER),
            by: account(HOLDER),
        })
        .await
        .then_expect_error(WorkspaceError::LastAccountHolder);
    framework()
        .given(staffed())
        .when_async(WorkspaceCommand::ChangeRole {
            account_id: account(HOLDER),
            role: Role::Agent,
            by: account(HOLDER),
        })
        .await
        .then_expect_error(WorkspaceError::LastAccountHolder);
    let mut two_holders = staffed();
    two_holders.push(WorkspaceEvent::RoleChanged {
        account_id: account(SUPERVISOR),
        role: Role::AccountHolder,
        by: account(HOLDER),
        at: at(),
    });
    framework()
        .given(two_holders)
        .when_async(WorkspaceCommand::RemoveMember {
            account_id: account(HOLDER),
            by: account(HOLDER),
        })
        .await
        .then_expect_events(vec![WorkspaceEvent::MemberRemoved {
            account_id: account(HOLDER),
            by: account(HOLDER),
            at: at(),
        }]);
}

#[tokio::test]
async fn a_member_is_added_once() {
    framework()
        .given(staffed())
        .when_async(WorkspaceCommand::AddMember {
            account_id: account(AGENT),
            role: Role::Agent,
            by: account(HOLDER),
        })
        .await
        .then_expect_error(WorkspaceError::AlreadyMember);
}
