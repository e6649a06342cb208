//! The password: checks, lock-outs, changes and resets by mail; registration.

use super::fixtures::*;

#[tokio::test]
async fn a_new_account_is_registered_once() {
    let register = || AccountCommand::Register {
        account_id: account_id(),
        email: SealedText("sealed-email".into()),
        display_name: None,
        password_hash: PasswordHash("plain:correct horse".into()),
    };
    let mut expected = registered();
    if let AccountEvent::Registered { at, .. } = &mut expected {
        *at = now();
    }
    framework()
        .given_no_previous_events()
        .when_async(register())
        .await
        .then_expect_events(vec![expected]);
    framework()
        .given(vec![registered()])
        .when_async(register())
        .await
        .then_expect_error(AccountError::AlreadyRegistered);
}

#[tokio::test]
async fn the_right_password_starts_a_session() {
    framework()
        .given(vec![registered()])
        .when_async(log_in("correct horse", 1))
        .await
        .then_expect_events(vec![session_started(1, now())]);
}

#[tokio::test]
async fn a_wrong_password_is_recorded_not_refused() {
    framework()
        .given(vec![registered()])
        .when_async(log_in("wrong", 1))
        .await
        .then_expect_events(vec![AccountEvent::PasswordCheckFailed {
            purpose: PasswordCheckPurpose::Login,
            consecutive_failures: 1,
            at: now(),
        }]);
}

#[tokio::test]
async fn the_tenth_consecutive_failure_locks_for_one_minute() {
    let mut given = vec![registered()];
    given.extend(failures(9));
    framework()
        .given(given)
        .when_async(log_in("wrong", 1))
        .await
        .then_expect_events(vec![
            AccountEvent::PasswordCheckFailed {
                purpose: PasswordCheckPurpose::Login,
                consecutive_failures: 10,
                at: now(),
            },
            AccountEvent::LockedOut {
                until: Some(now() + Duration::minutes(1)),
                consecutive_failures: 10,
                at: now(),
            },
        ]);
}

#[test]
fn refusal_windows_double_up_to_fifteen_minutes() {
    let policy = SecurityPolicy::default();
    let minutes = |n| policy.lockout_window(n).map(|w| w.num_minutes());
    assert_eq!(minutes(9), None);
    assert_eq!(minutes(10), Some(1));
    assert_eq!(minutes(11), Some(2));
    assert_eq!(minutes(13), Some(8));
    assert_eq!(minutes(14), Some(15));
    assert_eq!(minutes(99), Some(15));
}

/// Ten failures, and the lock they brought, ending in 30 seconds.
fn locked_for_thirty_seconds() -> Vec<AccountEvent> {
    let mut given = vec![registered()];
    given.extend(failures(10));
    given.push(AccountEvent::LockedOut {
        until: Some(now() + Duration::seconds(30)),
        consecutive_failures: 10,
        at: now(),
    });
    given
}

#[tokio::test]
async fn a_locked_account_refuses_even_the_right_password() {
    framework()
        .given(locked_for_thirty_seconds())
        .when_async(log_in("correct horse", 1))
        .await
        .then_expect_error(AccountError::Locked {
            until: Some(now() + Duration::seconds(30)),
        });
}

#[tokio::test]
async fn a_wrong_password_while_locked_is_answered_as_for_no_account_and_not_counted() {
    framework()
        .given(locked_for_thirty_seconds())
        .when_async(log_in("not the password", 1))
        .await
        .then_expect_error(AccountError::WrongPasswordWhileLocked);
}

#[tokio::test]
async fn an_expired_lock_lets_the_right_password_in_and_resets_the_count() {
    let lock = AccountEvent::LockedOut {
        until: Some(now() - Duration::seconds(1)),
        consecutive_failures: 10,
        at: now() - Duration::minutes(1),
    };
    let mut given = vec![registered()];
    given.extend(failures(10));
    given.push(lock);
    let events = framework()
        .given(given)
        .when_async(log_in("correct horse", 1))
        .await
        .inspect_result()
        .expect("login accepted");
    assert_eq!(events, vec![session_started(1, now())]);
}

#[tokio::test]
async fn the_hundredth_consecutive_failure_locks_until_an_admin_unlocks() {
    let mut given = vec![registered()];
    given.extend(failures(99));
    let events = framework()
        .given(given)
        .when_async(log_in("wrong", 1))
        .await
        .inspect_result()
        .expect("failure recorded");
    assert_eq!(
        events.last(),
        Some(&AccountEvent::LockedOut {
            until: None,
            consecutive_failures: 100,
            at: now(),
        })
    );
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    framework()
        .given(vec![
            registered(),
            session_started(1, now()),
            session_started(2, now()),
        ])
        .when_async(AccountCommand::from(PasswordCommand::Change {
            current_password: SecretString::from("correct horse"),
            new_password_hash: PasswordHash("plain:battery staple".into()),
            keep_session: Some(session_id(1)),
        }))
        .await
        .then_expect_events(vec![
            AccountEvent::PasswordChanged {
                password_hash: PasswordHash("plain:battery staple".into()),
                via: PasswordChangeVia::Change,
                at: now(),
            },
            AccountEvent::SessionEnded {
                session_id: session_id(2),
                reason: SessionEndReason::PasswordChanged,
                at: now(),
            },
        ]);
}

#[tokio::test]
async fn a_wrong_current_password_counts_toward_lockout() {
    framework()
        .given(vec![registered()])
        .when_async(AccountCommand::from(PasswordCommand::Change {
            current_password: SecretString::from("guess"),
            new_password_hash: PasswordHash("plain:battery staple".into()),
            keep_session: None,
        }))
        .await
        .then_expect_events(vec![AccountEvent::PasswordCheckFailed {
            purpose: PasswordCheckPurpose::Reauthentication,
            consecutive_failures: 1,
            at: now(),
        }]);
}

#[tokio::test]
async fn a_reset_token_sets_the_password_and_ends_all_sessions() {
    framework()
        .given(vec![
            registered(),
            session_started(1, now()),
            reset_requested(now() + Duration::minutes(25)),
        ])
        .when_async(reset_with("reset"))
        .await
        .then_expect_events(vec![
            AccountEvent::PasswordChanged {
                password_hash: PasswordHash("plain:new one".into()),
                via: PasswordChangeVia::Reset,
                at: now(),
            },
            AccountEvent::SessionEnded {
                session_id: session_id(1),
                reason: SessionEndReason::PasswordReset,
                at: now(),
            },
        ]);
}

#[tokio::test]
async fn a_reset_token_works_once() {
    framework()
        .given(vec![
            registered(),
            reset_requested(now() + Duration::minutes(25)),
            AccountEvent::PasswordChanged {
                password_hash: PasswordHash("plain:new one".into()),
                via: PasswordChangeVia::Reset,
                at: now(),
            },
        ])
        .when_async(reset_with("reset"))
        .await
        .then_expect_error(AccountError::ResetTokenInvalid);
}

#[tokio::test]
async fn an_expired_or_wrong_reset_token_is_refused() {
    framework()
        .given(vec![registered(), reset_requested(now())])
        .when_async(reset_with("reset"))
        .await
        .then_expect_error(AccountError::ResetTokenInvalid);
    framework()
        .given(vec![
            registered(),
            reset_requested(now() + Duration::minutes(5)),
        ])
        .when_async(reset_with("other"))
        .await
        .then_expect_error(AccountError::ResetTokenInvalid);
}

#[tokio::test]
async fn an_unregistered_account_refuses_logins() {
    framework()
        .given_no_previous_events()
        .when_async(log_in("anything", 1))
        .await
        .then_expect_error(AccountError::NotRegistered);
}

#[tokio::test]
async fn a_second_reset_within_a_minute_mails_nothing() {
    let recent = AccountEvent::PasswordResetRequested {
        token_hash: TokenHash("first".into()),
        expires_at: now() + Duration::minutes(30),
        at: now() - Duration::seconds(30),
        mail_nonce: None,
    };
    let again = || {
        AccountCommand::from(PasswordCommand::RequestReset {
            token_hash: TokenHash("second".into()),
            expires_at: now() + Duration::minutes(30),
            mail_nonce: "nonce".into(),
        })
    };
    framework()
        .given(vec![registered(), recent])
        .when_async(again())
        .await
        .then_expect_events(vec![]);
    let older = AccountEvent::PasswordResetRequested {
        token_hash: TokenHash("first".into()),
        expires_at: now() + Duration::minutes(29),
        at: now() - Duration::seconds(61),
        mail_nonce: None,
    };
    framework()
        .given(vec![registered(), older])
        .when_async(again())
        .await
        .then_expect_events(vec![AccountEvent::PasswordResetRequested {
            token_hash: TokenHash("second".into()),
            expires_at: now() + Duration::minutes(30),
            at: now(),
            mail_nonce: Some("nonce".into()),
        }]);
}
