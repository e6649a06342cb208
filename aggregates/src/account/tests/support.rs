//! Support: access requests, and erasure.

use super::fixtures::*;

#[tokio::test]
async fn an_approved_access_request_unlocks_and_only_one_is_open_at_a_time() {
    let request_id = Uuid::from_u128(77);
    let by = AccountId(Uuid::from_u128(9));
    let mut given = vec![
        registered(),
        AccountEvent::LockedOut {
            until: None,
            consecutive_failures: 100,
            at: now(),
        },
        AccountEvent::AccessRequested {
            request_id,
            reason: SealedText("sealed".into()),
            at: now(),
        },
    ];
    framework()
        .given(given.clone())
        .when_async(AccountCommand::from(SupportCommand::RequestAccess {
            request_id: Uuid::from_u128(78),
            reason: SealedText("again".into()),
        }))
        .await
        .then_expect_events(vec![]);
    framework()
        .given(given.clone())
        .when_async(AccountCommand::from(SupportCommand::DecideAccessRequest {
            request_id,
            approve: true,
            by,
        }))
        .await
        .then_expect_events(vec![
            AccountEvent::AccessRequestDecided {
                request_id,
                approved: true,
                by,
                at: now(),
            },
            AccountEvent::Unlocked { by, at: now() },
        ]);
    given.push(AccountEvent::AccessRequestDecided {
        request_id,
        approved: false,
        by,
        at: now(),
    });
    framework()
        .given(given)
        .when_async(AccountCommand::from(SupportCommand::DecideAccessRequest {
            request_id,
            approve: true,
            by,
        }))
        .await
        .then_expect_error(AccountError::AccessRequestNotFound);
}

#[tokio::test]
async fn erasure_ends_every_credential_and_the_account_accepts_nothing_after() {
    let by = AccountId(Uuid::from_u128(9));
    let given = vec![
        registered(),
        session_started(1, now()),
        token_created(1, "ci", None),
    ];
    framework()
        .given(given.clone())
        .when_async(AccountCommand::from(SupportCommand::Erase { by }))
        .await
        .then_expect_events(vec![
            AccountEvent::SessionEnded {
                session_id: session_id(1),
                reason: SessionEndReason::Revoked,
                at: now(),
            },
            AccountEvent::ApiTokenRevoked {
                token_id: TokenId(Uuid::from_u128(501)),
                at: now(),
            },
            AccountEvent::Erased { by, at: now() },
        ]);
    let mut erased = given;
    erased.push(AccountEvent::Erased { by, at: now() });
    framework()
        .given(erased)
        .when_async(log_in("correct horse", 2))
        .await
        .then_expect_error(AccountError::Erased);
}

#[tokio::test]
async fn the_auditor_role_is_granted_and_taken_back_once_each() {
    let by = AccountId(Uuid::from_u128(9));
    let set = |auditor| AccountCommand::from(SupportCommand::SetAuditor { auditor, by });
    framework()
        .given(vec![registered()])
        .when_async(set(true))
        .await
        .then_expect_events(vec![AccountEvent::AuditorGranted { by, at: now() }]);
    let granted = vec![registered(), AccountEvent::AuditorGranted { by, at: now() }];
    // Granting again records nothing: the log says what changed.
    framework()
        .given(granted.clone())
        .when_async(set(true))
        .await
        .then_expect_events(vec![]);
    framework()
        .given(granted)
        .when_async(set(false))
        .await
        .then_expect_events(vec![AccountEvent::AuditorRevoked { by, at: now() }]);
    framework()
        .given(vec![registered()])
        .when_async(set(false))
        .await
        .then_expect_events(vec![]);
}
