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
