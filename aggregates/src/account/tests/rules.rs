use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::account::*;
use crate::shared::{
    AccountId, Clock, PasswordHash, Scope, SealedText, SessionId, TokenHash, TokenId, TotpCode,
    WorkspaceId,
};

struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Stands in for argon2: a hash `plain:<password>` matches that password.
struct PlainPasswords;

#[async_trait]
impl PasswordVerifier for PlainPasswords {
    async fn verify(&self, hash: &PasswordHash, candidate: &SecretString) -> bool {
        hash.0 == format!("plain:{}", candidate.expose_secret())
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0)
        .single()
        .expect("valid")
}

/// Stands in for RFC 6238: for the secret `totp-secret`, code `111111` is step 100 and
/// `222222` is step 101.
struct FakeTotp;

impl TotpVerifier for FakeTotp {
    fn matching_step(&self, secret: &SealedText, code: &TotpCode, _: DateTime<Utc>) -> Option<u64> {
        match (secret.0.as_str(), code.as_str()) {
            ("totp-secret", "111111") => Some(100),
            ("totp-secret", "222222") => Some(101),
            _ => None,
        }
    }
}

fn services() -> AccountServices {
    AccountServices {
        clock: Arc::new(FixedClock(now())),
        passwords: Arc::new(PlainPasswords),
        totp: Arc::new(FakeTotp),
        policy: SecurityPolicy::default(),
    }
}

fn framework() -> TestFramework<Account> {
    TestFramework::with(services())
}

fn account_id() -> AccountId {
    AccountId(Uuid::from_u128(1))
}

fn session_id(n: u128) -> SessionId {
    SessionId(Uuid::from_u128(100 + n))
}

fn registered() -> AccountEvent {
    AccountEvent::Registered {
        account_id: account_id(),
        email: SealedText("sealed-email".into()),
        display_name: None,
        password_hash: PasswordHash("plain:correct horse".into()),
        at: now() - Duration::days(1),
    }
}

fn session_started(n: u128, at: DateTime<Utc>) -> AccountEvent {
    AccountEvent::SessionStarted {
        session_id: session_id(n),
        token_hash: TokenHash(format!("hash-{n}")),
        device: None,
        method: AuthMethod::Password,
        started_at: at,
        expires_at: at + Duration::hours(12),
        idle_timeout_secs: 1800,
        enrollment_only: false,
        required_by: vec![],
    }
}

fn failures(count: u32) -> Vec<AccountEvent> {
    (1..=count)
        .map(|n| AccountEvent::PasswordCheckFailed {
            purpose: PasswordCheckPurpose::Login,
            consecutive_failures: n,
            at: now() - Duration::hours(1),
        })
        .collect()
}

fn log_in(password: &str, n: u128) -> AccountCommand {
    AccountCommand::from(SessionCommand::LogIn {
        password: SecretString::from(password),
        session: NewSession {
            session_id: session_id(n),
            token_hash: TokenHash(format!("hash-{n}")),
            device: None,
            method: AuthMethod::Password,
        },
        challenge_hash: TokenHash(format!("challenge-{n}")),
        mfa_required_by: vec![],
    })
}

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

#[tokio::test]
async fn a_locked_account_refuses_even_the_right_password() {
    let lock = AccountEvent::LockedOut {
        until: Some(now() + Duration::seconds(30)),
        consecutive_failures: 10,
        at: now(),
    };
    let mut given = vec![registered()];
    given.extend(failures(10));
    given.push(lock);
    framework()
        .given(given)
        .when_async(log_in("correct horse", 1))
        .await
        .then_expect_error(AccountError::Locked {
            until: Some(now() + Duration::seconds(30)),
        });
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

fn reset_requested(expires_at: DateTime<Utc>) -> AccountEvent {
    AccountEvent::PasswordResetRequested {
        token_hash: TokenHash("reset".into()),
        expires_at,
        at: now() - Duration::minutes(5),
    }
}

fn reset_with(token: &str) -> AccountCommand {
    AccountCommand::from(PasswordCommand::Reset {
        token_hash: TokenHash(token.into()),
        new_password_hash: PasswordHash("plain:new one".into()),
    })
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

fn token_created(n: u128, name: &str, expires_at: Option<DateTime<Utc>>) -> AccountEvent {
    AccountEvent::ApiTokenCreated {
        token_id: TokenId(Uuid::from_u128(500 + n)),
        name: name.into(),
        token_hash: TokenHash(format!("token-{n}")),
        scopes: vec![Scope::Read],
        expires_at,
        at: now() - Duration::hours(1),
    }
}

fn create_token(
    password: &str,
    n: u128,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> AccountCommand {
    AccountCommand::from(ApiTokenCommand::Create {
        password: SecretString::from(password),
        token: NewApiToken {
            token_id: TokenId(Uuid::from_u128(500 + n)),
            name: name.into(),
            token_hash: TokenHash(format!("token-{n}")),
            scopes: vec![Scope::Read],
            expires_at,
        },
    })
}

#[tokio::test]
async fn an_api_token_is_created_after_the_password_is_checked() {
    let mut expected = token_created(1, "ci", None);
    if let AccountEvent::ApiTokenCreated { at, .. } = &mut expected {
        *at = now();
    }
    framework()
        .given(vec![registered()])
        .when_async(create_token("correct horse", 1, "ci", None))
        .await
        .then_expect_events(vec![expected]);
    framework()
        .given(vec![registered()])
        .when_async(create_token("wrong", 1, "ci", None))
        .await
        .then_expect_events(vec![AccountEvent::PasswordCheckFailed {
            purpose: PasswordCheckPurpose::Reauthentication,
            consecutive_failures: 1,
            at: now(),
        }]);
}

#[tokio::test]
async fn token_names_are_unique_among_live_tokens() {
    framework()
        .given(vec![registered(), token_created(1, "ci", None)])
        .when_async(create_token("correct horse", 2, "ci", None))
        .await
        .then_expect_error(AccountError::TokenNameTaken);
    let revoked = AccountEvent::ApiTokenRevoked {
        token_id: TokenId(Uuid::from_u128(501)),
        at: now(),
    };
    let events = framework()
        .given(vec![registered(), token_created(1, "ci", None), revoked])
        .when_async(create_token("correct horse", 2, "ci", None))
        .await
        .inspect_result()
        .expect("the name is free again");
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn a_token_cannot_expire_in_the_past() {
    framework()
        .given(vec![registered()])
        .when_async(create_token("correct horse", 1, "ci", Some(now())))
        .await
        .then_expect_error(AccountError::ExpiryInPast);
}

#[tokio::test]
async fn first_use_and_expiry_are_recorded_once() {
    let id = TokenId(Uuid::from_u128(501));
    let used = AccountEvent::ApiTokenFirstUsed {
        token_id: id,
        at: now(),
    };
    framework()
        .given(vec![registered(), token_created(1, "ci", None)])
        .when_async(AccountCommand::from(ApiTokenCommand::RecordUse {
            token_id: id,
        }))
        .await
        .then_expect_events(vec![used.clone()]);
    framework()
        .given(vec![registered(), token_created(1, "ci", None), used])
        .when_async(AccountCommand::from(ApiTokenCommand::RecordUse {
            token_id: id,
        }))
        .await
        .then_expect_events(vec![]);
    let expired = AccountEvent::ApiTokenExpired {
        token_id: id,
        at: now(),
    };
    framework()
        .given(vec![registered(), token_created(1, "ci", Some(now()))])
        .when_async(AccountCommand::from(ApiTokenCommand::RecordExpired {
            token_id: id,
        }))
        .await
        .then_expect_events(vec![expired.clone()]);
    framework()
        .given(vec![
            registered(),
            token_created(1, "ci", Some(now())),
            expired,
        ])
        .when_async(AccountCommand::from(ApiTokenCommand::RecordExpired {
            token_id: id,
        }))
        .await
        .then_expect_events(vec![]);
    framework()
        .given(vec![
            registered(),
            token_created(1, "ci", Some(now() + Duration::days(1))),
        ])
        .when_async(AccountCommand::from(ApiTokenCommand::RecordExpired {
            token_id: id,
        }))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn rate_limiting_is_recorded_at_most_once_a_minute() {
    let id = TokenId(Uuid::from_u128(501));
    let limited = |at| AccountEvent::ApiTokenRateLimited { token_id: id, at };
    framework()
        .given(vec![
            registered(),
            token_created(1, "ci", None),
            limited(now() - Duration::seconds(59)),
        ])
        .when_async(AccountCommand::from(ApiTokenCommand::RecordRateLimited {
            token_id: id,
        }))
        .await
        .then_expect_events(vec![]);
    framework()
        .given(vec![
            registered(),
            token_created(1, "ci", None),
            limited(now() - Duration::seconds(60)),
        ])
        .when_async(AccountCommand::from(ApiTokenCommand::RecordRateLimited {
            token_id: id,
        }))
        .await
        .then_expect_events(vec![limited(now())]);
}

#[tokio::test]
async fn a_revoked_token_cannot_be_revoked_or_used_again() {
    let id = TokenId(Uuid::from_u128(501));
    let given = || {
        vec![
            registered(),
            token_created(1, "ci", None),
            AccountEvent::ApiTokenRevoked {
                token_id: id,
                at: now(),
            },
        ]
    };
    framework()
        .given(given())
        .when_async(AccountCommand::from(ApiTokenCommand::Revoke {
            token_id: id,
        }))
        .await
        .then_expect_error(AccountError::TokenNotFound);
    framework()
        .given(given())
        .when_async(AccountCommand::from(ApiTokenCommand::RecordUse {
            token_id: id,
        }))
        .await
        .then_expect_error(AccountError::TokenNotFound);
}

fn totp_on() -> Vec<AccountEvent> {
    vec![
        registered(),
        AccountEvent::TotpEnrollmentStarted {
            secret: SealedText("totp-secret".into()),
            recovery_codes: vec!["rc-1".into(), "rc-2".into()],
            at: now() - Duration::hours(2),
        },
        AccountEvent::TotpConfirmed {
            step: 50,
            at: now() - Duration::hours(2),
        },
    ]
}

fn challenged(n: u128) -> AccountEvent {
    AccountEvent::MfaChallengeIssued {
        challenge_hash: TokenHash(format!("challenge-{n}")),
        device: None,
        methods: vec![MfaMethod::Totp, MfaMethod::RecoveryCode],
        expires_at: now() + Duration::minutes(5),
        at: now(),
        required_by: vec![],
    }
}

fn complete(n: u128, proof: MfaProof) -> AccountCommand {
    AccountCommand::from(MfaCommand::Complete {
        challenge_hash: TokenHash(format!("challenge-{n}")),
        proof,
        session: NewSession {
            session_id: session_id(n),
            token_hash: TokenHash(format!("hash-{n}")),
            device: None,
            method: AuthMethod::Password,
        },
    })
}

fn code(text: &str) -> TotpCode {
    TotpCode::parse(text).expect("six digits")
}

fn mfa_session(n: u128, method: AuthMethod) -> AccountEvent {
    let mut event = session_started(n, now());
    if let AccountEvent::SessionStarted { method: m, .. } = &mut event {
        *m = method;
    }
    event
}

#[tokio::test]
async fn with_totp_on_the_password_step_issues_a_challenge_not_a_session() {
    framework()
        .given(totp_on())
        .when_async(log_in("correct horse", 1))
        .await
        .then_expect_events(vec![challenged(1)]);
}

#[tokio::test]
async fn enrolment_waits_for_a_current_code_and_cannot_repeat_once_on() {
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
            code_hash: "enrol".into(),
            expires_at: now() + Duration::minutes(10),
            at: now(),
        },
        AccountEvent::EmailMfaEnabled { at: now() },
        challenged(1),
        AccountEvent::EmailCodeSent {
            challenge_hash: Some(TokenHash("challenge-1".into())),
            code_hash: "login-code".into(),
            expires_at: now() + Duration::minutes(10),
            at: now(),
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

fn pin_set() -> AccountEvent {
    AccountEvent::PinSet {
        pin_hash: PasswordHash("plain:4321".into()),
        at: now() - Duration::hours(1),
    }
}

fn verify_pin(pin: &str) -> AccountCommand {
    AccountCommand::from(PinCommand::Verify {
        pin: SecretString::from(pin),
        session_id: session_id(1),
    })
}

#[tokio::test]
async fn a_right_pin_unlocks_for_fifteen_minutes_and_five_wrong_ones_lock_it() {
    let base = vec![registered(), session_started(1, now()), pin_set()];
    framework()
        .given(base.clone())
        .when_async(verify_pin("4321"))
        .await
        .then_expect_events(vec![AccountEvent::PinVerified {
            session_id: session_id(1),
            unlocked_until: now() + Duration::minutes(15),
            at: now(),
        }]);
    let mut given = base.clone();
    for n in 1..=4 {
        given.push(AccountEvent::PinCheckFailed {
            session_id: session_id(1),
            consecutive_failures: n,
            at: now(),
        });
    }
    framework()
        .given(given.clone())
        .when_async(verify_pin("0000"))
        .await
        .then_expect_events(vec![
            AccountEvent::PinCheckFailed {
                session_id: session_id(1),
                consecutive_failures: 5,
                at: now(),
            },
            AccountEvent::PinLocked {
                until: now() + Duration::minutes(15),
                at: now(),
            },
        ]);
    given.push(AccountEvent::PinLocked {
        until: now() + Duration::minutes(15),
        at: now(),
    });
    framework()
        .given(given.clone())
        .when_async(verify_pin("4321"))
        .await
        .then_expect_error(AccountError::PinLocked {
            until: now() + Duration::minutes(15),
        });
    let mut expired = base;
    expired.push(AccountEvent::PinLocked {
        until: now() - Duration::seconds(1),
        at: now() - Duration::minutes(15),
    });
    let events = framework()
        .given(expired)
        .when_async(verify_pin("4321"))
        .await
        .inspect_result()
        .expect("the lock has ended");
    assert!(matches!(
        events.as_slice(),
        [AccountEvent::PinVerified { .. }]
    ));
}

#[tokio::test]
async fn a_second_reset_within_a_minute_mails_nothing() {
    let recent = AccountEvent::PasswordResetRequested {
        token_hash: TokenHash("first".into()),
        expires_at: now() + Duration::minutes(30),
        at: now() - Duration::seconds(30),
    };
    let again = || {
        AccountCommand::from(PasswordCommand::RequestReset {
            token_hash: TokenHash("second".into()),
            expires_at: now() + Duration::minutes(30),
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
    };
    framework()
        .given(vec![registered(), older])
        .when_async(again())
        .await
        .then_expect_events(vec![AccountEvent::PasswordResetRequested {
            token_hash: TokenHash("second".into()),
            expires_at: now() + Duration::minutes(30),
            at: now(),
        }]);
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
