//! What a command's events amount to for its caller.

use chrono::{TimeZone, Utc};
use uuid::Uuid;

use crate::account::*;
use crate::shared::{SessionId, TokenHash};

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0)
        .single()
        .expect("valid")
}

fn started(enrollment_only: bool) -> AccountEvent {
    AccountEvent::SessionStarted {
        session_id: SessionId(Uuid::from_u128(1)),
        token_hash: TokenHash("hash".into()),
        device: None,
        method: AuthMethod::Password,
        started_at: at(),
        expires_at: at(),
        idle_timeout_secs: 1800,
        enrollment_only,
        required_by: vec![],
        sso: None,
        device_hash: None,
        new_device: false,
    }
}

fn failed() -> AccountEvent {
    AccountEvent::PasswordCheckFailed {
        purpose: PasswordCheckPurpose::Login,
        consecutive_failures: 1,
        at: at(),
    }
}

#[test]
fn a_started_session_is_authenticated_or_enrollment_only() {
    assert!(matches!(
        Outcome::of(&[started(false)]),
        Outcome::Authenticated { .. }
    ));
    assert!(matches!(
        Outcome::of(&[started(true)]),
        Outcome::EnrollmentOnly { .. }
    ));
}

#[test]
fn a_recorded_failure_is_a_refusal_even_beside_other_events() {
    let locked = AccountEvent::LockedOut {
        until: None,
        consecutive_failures: 100,
        at: at(),
    };
    assert_eq!(
        Outcome::of(&[failed(), locked]),
        Outcome::Refused(Refusal::Password)
    );
    let code = AccountEvent::EmailCodeRejected { at: at() };
    assert_eq!(
        Outcome::of(&[code]),
        Outcome::Refused(Refusal::SecondFactor)
    );
}

#[test]
fn a_challenge_names_its_methods_and_nothing_at_all_is_done() {
    let issued = AccountEvent::MfaChallengeIssued {
        challenge_hash: TokenHash("c".into()),
        device: None,
        methods: vec![MfaMethod::Totp],
        expires_at: at(),
        at: at(),
        required_by: vec![],
    };
    assert_eq!(
        Outcome::of(&[issued]),
        Outcome::Challenged {
            methods: vec![MfaMethod::Totp],
            expires_at: at()
        }
    );
    assert_eq!(Outcome::of(&[]), Outcome::Done);
}
