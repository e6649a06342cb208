//! Second factors: TOTP, recovery codes, emailed codes, the challenge and its lock-out.

use super::fixtures::*;

#[tokio::test]
async fn with_totp_on_the_password_step_issues_a_challenge_not_a_session() {
    framework()
        .given(totp_on())
        .when_async(log_in("correct horse", 1))
        .await
        .then_expect_events(vec![challenged(1)]);
}

#[tokio::test]
async fn enrollment_waits_for_a_current_code_and_cannot_repeat_once_on() {
    let started = AccountEvent::TotpEnrollmentStarted {
        secret: SealedText("totp-secret".into()),
        recovery_codes: vec!["rc-1".into()],
        at: now(),
    };
    framework()
        .given(vec![registered(), started.clone()])
        .when_async(AccountCommand::from(MfaCommand::ConfirmTotp {
            code: code("000000"),
        }))
        .await
        .then_expect_events(vec![AccountEvent::MfaCheckFailed {
            challenge_hash: None,
            method: MfaMethod::Totp,
            reason: MfaFailure::WrongCode,
            consecutive_failures: 1,
            at: now(),
        }]);
    framework()
        .given(vec![registered(), started])
        .when_async(AccountCommand::from(MfaCommand::ConfirmTotp {
            code: code("111111"),
        }))
        .await
        .then_expect_events(vec![AccountEvent::TotpConfirmed {
            step: 100,
            at: now(),
        }]);
    framework()
        .given(totp_on())
        .when_async(AccountCommand::from(MfaCommand::StartTotpEnrollment {
            secret: SealedText("other".into()),
            recovery_code_hashes: vec![],
        }))
        .await
        .then_expect_error(AccountError::TotpAlreadyEnabled);
}

#[tokio::test]
async fn a_current_totp_code_completes_the_challenge_with_its_step_recorded() {
    let mut given = totp_on();
    given.push(challenged(1));
    framework()
        .given(given)
        .when_async(complete(1, MfaProof::Totp(code("111111"))))
        .await
        .then_expect_events(vec![
            AccountEvent::TotpStepAccepted {
                step: 100,
                at: now(),
            },
            AccountEvent::MfaPassed {
                challenge_hash: TokenHash("challenge-1".into()),
                method: MfaMethod::Totp,
                at: now(),
            },
            mfa_session(1, AuthMethod::Totp),
        ]);
}

#[tokio::test]
async fn a_used_totp_step_is_refused() {
    let mut given = totp_on();
    given.push(AccountEvent::TotpStepAccepted {
        step: 100,
        at: now(),
    });
    given.push(challenged(2));
    framework()
        .given(given)
        .when_async(complete(2, MfaProof::Totp(code("111111"))))
        .await
        .then_expect_events(vec![AccountEvent::MfaCheckFailed {
            challenge_hash: Some(TokenHash("challenge-2".into())),
            method: MfaMethod::Totp,
            reason: MfaFailure::Replayed,
            consecutive_failures: 1,
            at: now(),
        }]);
}

#[tokio::test]
async fn a_recovery_code_works_once() {
    let mut given = totp_on();
    given.push(challenged(1));
    let used = AccountEvent::RecoveryCodeUsed {
        code_hash: "rc-1".into(),
        remaining: 1,
        at: now(),
    };
    framework()
        .given(given.clone())
        .when_async(complete(1, MfaProof::RecoveryCode("rc-1".into())))
        .await
        .then_expect_events(vec![
            used.clone(),
            AccountEvent::MfaPassed {
                challenge_hash: TokenHash("challenge-1".into()),
                method: MfaMethod::RecoveryCode,
                at: now(),
            },
            mfa_session(1, AuthMethod::RecoveryCode),
        ]);
    given.push(used);
    given.push(challenged(2));
    let events = framework()
        .given(given)
        .when_async(complete(2, MfaProof::RecoveryCode("rc-1".into())))
        .await
        .inspect_result()
        .expect("a failure is recorded");
    assert!(matches!(
        events.as_slice(),
        [AccountEvent::MfaCheckFailed {
            reason: MfaFailure::WrongCode,
            ..
        }]
    ));
}

#[tokio::test]
async fn a_challenge_allows_five_wrong_codes_and_expires() {
    let mut given = totp_on();
    given.push(challenged(1));
    for n in 1..=5 {
        given.push(AccountEvent::MfaCheckFailed {
            challenge_hash: Some(TokenHash("challenge-1".into())),
            method: MfaMethod::Totp,
            reason: MfaFailure::WrongCode,
            consecutive_failures: n,
            at: now(),
        });
    }
    framework()
        .given(given)
        .when_async(complete(1, MfaProof::Totp(code("111111"))))
        .await
        .then_expect_error(AccountError::ChallengeInvalid);
    let mut expired = totp_on();
    expired.push(AccountEvent::MfaChallengeIssued {
        challenge_hash: TokenHash("challenge-1".into()),
        device: None,
        methods: vec![MfaMethod::Totp],
        expires_at: now(),
        at: now() - Duration::minutes(5),
        required_by: vec![],
    });
    framework()
        .given(expired)
        .when_async(complete(1, MfaProof::Totp(code("111111"))))
        .await
        .then_expect_error(AccountError::ChallengeInvalid);
}

#[tokio::test]
async fn twenty_consecutive_mfa_failures_lock_until_an_admin_unlocks() {
    let mut given = totp_on();
    for n in 1..=19 {
        given.push(AccountEvent::MfaCheckFailed {
            challenge_hash: None,
            method: MfaMethod::Totp,
            reason: MfaFailure::WrongCode,
            consecutive_failures: n,
            at: now(),
        });
    }
    given.push(challenged(1));
    framework()
        .given(given.clone())
        .when_async(complete(1, MfaProof::Totp(code("999999"))))
        .await
        .then_expect_events(vec![
            AccountEvent::MfaCheckFailed {
                challenge_hash: Some(TokenHash("challenge-1".into())),
                method: MfaMethod::Totp,
                reason: MfaFailure::WrongCode,
                consecutive_failures: 20,
                at: now(),
            },
            AccountEvent::MfaLockedOut {
                consecutive_failures: 20,
                at: now(),
            },
        ]);
    given.push(AccountEvent::MfaLockedOut {
        consecutive_failures: 20,
        at: now(),
    });
    framework()
        .given(given.clone())
        .when_async(log_in("correct horse", 2))
        .await
        .then_expect_error(AccountError::Locked { until: None });
    given.push(AccountEvent::Unlocked {
        by: AccountId(Uuid::from_u128(9)),
        at: now(),
    });
    framework()
        .given(given)
        .when_async(log_in("correct horse", 2))
        .await
        .then_expect_events(vec![challenged(2)]);
}

#[tokio::test]
async fn turning_totp_off_needs_the_password_or_a_current_code() {
    framework()
        .given(totp_on())
        .when_async(AccountCommand::from(MfaCommand::DisableTotp {
            proof: Reauthentication::Password(SecretString::from("wrong")),
        }))
        .await
        .then_expect_events(vec![AccountEvent::PasswordCheckFailed {
            purpose: PasswordCheckPurpose::Reauthentication,
            consecutive_failures: 1,
            at: now(),
        }]);
    framework()
        .given(totp_on())
        .when_async(AccountCommand::from(MfaCommand::DisableTotp {
            proof: Reauthentication::Totp(code("222222")),
        }))
        .await
        .then_expect_events(vec![
            AccountEvent::TotpStepAccepted {
                step: 101,
                at: now(),
            },
            AccountEvent::TotpDisabled { at: now() },
        ]);
}

#[tokio::test]
async fn new_recovery_codes_replace_the_old_set() {
    framework()
        .given(totp_on())
        .when_async(AccountCommand::from(MfaCommand::ReplaceRecoveryCodes {
            code: code("111111"),
            recovery_code_hashes: vec!["new".into()],
        }))
        .await
        .then_expect_events(vec![
            AccountEvent::TotpStepAccepted {
                step: 100,
                at: now(),
            },
            AccountEvent::RecoveryCodesReplaced {
                recovery_codes: vec!["new".into()],
                at: now(),
            },
        ]);
}

#[tokio::test]
async fn an_mfa_reset_removes_every_factor_and_ends_sessions() {
    let mut given = totp_on();
    given.push(session_started(1, now()));
    let by = AccountId(Uuid::from_u128(9));
    framework()
        .given(given)
        .when_async(AccountCommand::from(SupportCommand::ResetMfa { by }))
        .await
        .then_expect_events(vec![
            AccountEvent::MfaReset { by, at: now() },
            AccountEvent::SessionEnded {
                session_id: session_id(1),
                reason: SessionEndReason::Revoked,
                at: now(),
            },
        ]);
}

#[tokio::test]
async fn an_emailed_login_code_is_bound_to_its_challenge_and_expires() {
    let mut given = vec![
        registered(),
        AccountEvent::EmailCodeSent {
            challenge_hash: None,
            code_hash: "enroll".into(),
            expires_at: now() + Duration::minutes(10),
            at: now(),
            mail_nonce: None,
        },
        AccountEvent::EmailMfaEnabled { at: now() },
        challenged(1),
        AccountEvent::EmailCodeSent {
            challenge_hash: Some(TokenHash("challenge-1".into())),
            code_hash: "login-code".into(),
            expires_at: now() + Duration::minutes(10),
            at: now(),
            mail_nonce: None,
        },
    ];
    let events = framework()
        .given(given.clone())
        .when_async(complete(1, MfaProof::Email("login-code".into())))
        .await
        .inspect_result()
        .expect("passed");
    assert_eq!(events.last(), Some(&mfa_session(1, AuthMethod::Email)));
    given.push(challenged(2));
    let events = framework()
        .given(given)
        .when_async(complete(2, MfaProof::Email("login-code".into())))
        .await
        .inspect_result()
        .expect("a failure is recorded");
    assert!(matches!(
        events.as_slice(),
        [AccountEvent::MfaCheckFailed {
            method: MfaMethod::Email,
            ..
        }]
    ));
}
