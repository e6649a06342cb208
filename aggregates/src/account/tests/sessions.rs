//! Sessions: ending them, and what a workspace policy does to them.

use super::fixtures::*;

#[tokio::test]
async fn revoking_all_sessions_ends_every_live_one() {
    framework()
        .given(vec![
            registered(),
            session_started(1, now()),
            session_started(2, now()),
        ])
        .when_async(AccountCommand::from(SessionCommand::EndAll {
            reason: SessionEndReason::RevokedAll,
        }))
        .await
        .then_expect_events(vec![
            AccountEvent::SessionEnded {
                session_id: session_id(1),
                reason: SessionEndReason::RevokedAll,
                at: now(),
            },
            AccountEvent::SessionEnded {
                session_id: session_id(2),
                reason: SessionEndReason::RevokedAll,
                at: now(),
            },
        ]);
}

#[tokio::test]
async fn an_ended_session_cannot_be_ended_again() {
    framework()
        .given(vec![
            registered(),
            session_started(1, now()),
            AccountEvent::SessionEnded {
                session_id: session_id(1),
                reason: SessionEndReason::LoggedOut,
                at: now(),
            },
        ])
        .when_async(AccountCommand::from(SessionCommand::End {
            session_id: session_id(1),
            reason: SessionEndReason::Revoked,
        }))
        .await
        .then_expect_error(AccountError::SessionNotFound);
}

#[tokio::test]
async fn a_workspace_policy_without_a_factor_gives_an_enrollment_only_session() {
    let workspace = WorkspaceId(Uuid::from_u128(700));
    let command = match log_in("correct horse", 1) {
        AccountCommand::Session(SessionCommand::LogIn {
            password,
            session,
            challenge_hash,
            ..
        }) => AccountCommand::from(SessionCommand::LogIn {
            password,
            session,
            challenge_hash,
            mfa_required_by: vec![workspace],
        }),
        _ => unreachable!(),
    };
    let mut expected = session_started(1, now());
    if let AccountEvent::SessionStarted {
        enrollment_only,
        required_by,
        ..
    } = &mut expected
    {
        *enrollment_only = true;
        *required_by = vec![workspace];
    }
    framework()
        .given(vec![registered()])
        .when_async(command)
        .await
        .then_expect_events(vec![expected]);
}

#[tokio::test]
async fn a_new_policy_ends_only_the_sessions_that_skipped_mfa() {
    let mut given = totp_on();
    given.push(session_started(1, now() - Duration::minutes(5)));
    given.push(mfa_session(2, AuthMethod::Totp));
    // Started after the policy: decided under it, so it stays.
    given.push(session_started(3, now()));
    let started_by = now() - Duration::minutes(1);
    framework()
        .given(given)
        .when_async(AccountCommand::from(SessionCommand::EndWithoutMfa {
            started_by,
        }))
        .await
        .then_expect_events(vec![AccountEvent::SessionEnded {
            session_id: session_id(1),
            reason: SessionEndReason::MfaPolicy,
            at: now(),
        }]);
}

fn log_in_from(device: &str, n: u128) -> AccountCommand {
    let AccountCommand::Session(SessionCommand::LogIn {
        password,
        mut session,
        challenge_hash,
        mfa_required_by,
    }) = log_in("correct horse", n)
    else {
        unreachable!("log_in builds a login");
    };
    session.device_hash = Some(device.into());
    AccountCommand::from(SessionCommand::LogIn {
        password,
        session,
        challenge_hash,
        mfa_required_by,
    })
}

fn started_from(device: &str, n: u128) -> AccountEvent {
    let mut started = session_started(n, now());
    if let AccountEvent::SessionStarted { device_hash, .. } = &mut started {
        *device_hash = Some(device.into());
    }
    started
}

fn new_device_of(events: &[AccountEvent]) -> Option<bool> {
    events.iter().find_map(|e| match e {
        AccountEvent::SessionStarted { new_device, .. } => Some(*new_device),
        _ => None,
    })
}

#[tokio::test]
async fn a_sign_in_from_a_device_never_seen_before_is_news_but_the_first_one_is_not() {
    let first = framework()
        .given(vec![registered()])
        .when_async(log_in_from("laptop", 1))
        .await
        .inspect_result()
        .expect("signed in");
    assert_eq!(new_device_of(&first), Some(false), "the first device");

    let known = framework()
        .given(vec![registered(), started_from("laptop", 1)])
        .when_async(log_in_from("laptop", 2))
        .await
        .inspect_result()
        .expect("signed in");
    assert_eq!(new_device_of(&known), Some(false), "a known device");

    let other = framework()
        .given(vec![registered(), started_from("laptop", 1)])
        .when_async(log_in_from("phone", 2))
        .await
        .inspect_result()
        .expect("signed in");
    assert_eq!(new_device_of(&other), Some(true), "another device");
}

#[tokio::test]
async fn notices_are_on_until_turned_off_and_an_unchanged_choice_records_nothing() {
    let off: std::collections::BTreeSet<Notice> = [Notice::ApiTokenCreated].into();
    framework()
        .given(vec![registered()])
        .when_async(AccountCommand::SetNotices { off: off.clone() })
        .await
        .then_expect_events(vec![AccountEvent::NoticesChanged {
            off: vec![Notice::ApiTokenCreated],
            at: now(),
        }]);
    let changed = AccountEvent::NoticesChanged {
        off: vec![Notice::ApiTokenCreated],
        at: now(),
    };
    framework()
        .given(vec![registered(), changed.clone()])
        .when_async(AccountCommand::SetNotices { off })
        .await
        .then_expect_events(vec![]);
    let mut account = Account::default();
    cqrs_es::Aggregate::apply(&mut account, registered());
    assert!(account.wants(Notice::ApiTokenCreated));
    cqrs_es::Aggregate::apply(&mut account, changed);
    assert!(!account.wants(Notice::ApiTokenCreated));
    assert!(account.wants(Notice::NewSignIn));
}
