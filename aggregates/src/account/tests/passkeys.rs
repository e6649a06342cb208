//! Passkeys: the registration ceremony answered once, the signature counter decided against the
//! newest state, a passkey as the second step and as the only step, and MFA reset.

use super::fixtures::*;

fn ceremony() -> SealedText {
    SealedText("sealed-ceremony".into())
}

fn registration_started() -> AccountEvent {
    AccountEvent::PasskeyRegistrationStarted {
        ceremony: ceremony(),
        expires_at: now() + Duration::minutes(5),
        at: now(),
    }
}

fn new_passkey(counter: u32) -> NewPasskey {
    NewPasskey {
        credential_id: "cred-1".into(),
        name: SealedText("sealed-name".into()),
        credential: "{}".into(),
        counter,
        backup_eligible: true,
        backup_state: false,
        transports: vec!["internal".into()],
    }
}

fn passkey_registered(counter: u32) -> AccountEvent {
    let passkey = new_passkey(counter);
    AccountEvent::PasskeyRegistered {
        credential_id: passkey.credential_id,
        passkey_name: passkey.name,
        credential: passkey.credential,
        counter: passkey.counter,
        backup_eligible: passkey.backup_eligible,
        backup_state: passkey.backup_state,
        transports: passkey.transports,
        at: now(),
    }
}

fn used(counter: u32) -> AccountEvent {
    AccountEvent::PasskeyUsed {
        credential_id: "cred-1".into(),
        counter,
        backup_state: false,
        backup_state_changed: false,
        credential: format!("{{\"counter\":{counter}}}"),
        at: now(),
    }
}

fn checked(counter: u32, backup_state: bool) -> PasskeyCheck {
    PasskeyCheck {
        credential_id: "cred-1".into(),
        outcome: Ok(PasskeyAssertion {
            counter,
            backup_state,
            credential: format!("{{\"counter\":{counter}}}"),
        }),
    }
}

fn sign_in(check: PasskeyCheck) -> AccountCommand {
    AccountCommand::from(PasskeyCommand::SignIn {
        assertion: check,
        session: NewSession {
            session_id: session_id(1),
            token_hash: TokenHash("hash-1".into()),
            device: None,
            method: AuthMethod::Password,
            sso: None,
            device_hash: None,
        },
    })
}

fn refused(reason: PasskeyRefusal) -> AccountEvent {
    AccountEvent::PasskeyRefused {
        credential_id: "cred-1".into(),
        reason,
        at: now(),
    }
}

#[tokio::test]
async fn a_registration_is_accepted_for_the_open_ceremony_only_and_once() {
    let register = || {
        AccountCommand::from(PasskeyCommand::Register {
            state: ceremony(),
            passkey: new_passkey(0),
        })
    };
    framework()
        .given(vec![registered(), registration_started()])
        .when_async(register())
        .await
        .then_expect_events(vec![passkey_registered(0)]);
    framework()
        .given(vec![
            registered(),
            registration_started(),
            passkey_registered(0),
        ])
        .when_async(register())
        .await
        .then_expect_error(AccountError::PasskeyRegistrationInvalid);
    framework()
        .given(vec![registered()])
        .when_async(register())
        .await
        .then_expect_error(AccountError::PasskeyRegistrationInvalid);
}

#[tokio::test]
async fn a_counter_that_did_not_grow_past_the_newest_use_is_refused() {
    let history = vec![registered(), passkey_registered(0), used(7)];
    // The edge may have checked against an older credential (another process read it before
    // the use at 7 was recorded): the account decides against its newest state.
    framework()
        .given(history.clone())
        .when_async(sign_in(checked(7, false)))
        .await
        .then_expect_events(vec![refused(PasskeyRefusal::CounterWentBackwards)]);
    let mut signed_in = framework()
        .given(history)
        .when_async(sign_in(checked(8, true)))
        .await
        .inspect_result()
        .expect("accepted");
    assert_eq!(signed_in.len(), 2, "{signed_in:?}");
    let started = signed_in.pop().expect("a session");
    assert!(
        matches!(
            started,
            AccountEvent::SessionStarted {
                method: AuthMethod::Passkey,
                ..
            }
        ),
        "{started:?}"
    );
    assert_eq!(
        signed_in.pop(),
        Some(AccountEvent::PasskeyUsed {
            credential_id: "cred-1".into(),
            counter: 8,
            backup_state: true,
            backup_state_changed: true,
            credential: "{\"counter\":8}".into(),
            at: now(),
        })
    );
}

#[tokio::test]
async fn authenticators_without_a_counter_are_not_refused_for_it() {
    framework()
        .given(vec![registered(), passkey_registered(0), used(0)])
        .when_async(sign_in(checked(0, false)))
        .await
        .inspect_result()
        .expect("accepted");
}

#[tokio::test]
async fn a_locked_account_is_not_signed_in_by_a_passkey_and_an_unknown_one_is_recorded() {
    let mut locked = vec![registered(), passkey_registered(0)];
    locked.push(AccountEvent::LockedOut {
        until: None,
        consecutive_failures: 10,
        at: now(),
    });
    framework()
        .given(locked)
        .when_async(sign_in(checked(1, false)))
        .await
        .then_expect_error(AccountError::Locked { until: None });
    framework()
        .given(vec![registered()])
        .when_async(sign_in(checked(1, false)))
        .await
        .then_expect_events(vec![refused(PasskeyRefusal::UnknownCredential)]);
}

#[tokio::test]
async fn a_passkey_is_offered_and_passes_a_challenge_with_the_challenge_s_ceremony_only() {
    let mut given = vec![registered(), passkey_registered(0)];
    let login = framework()
        .given(given.clone())
        .when_async(log_in("correct horse", 1))
        .await
        .inspect_result()
        .expect("challenged");
    assert!(
        matches!(&login[0], AccountEvent::MfaChallengeIssued { methods, .. } if methods == &vec![MfaMethod::Passkey]),
        "{login:?}"
    );
    given.extend(login);
    given.push(AccountEvent::MfaPasskeyRequested {
        challenge_hash: TokenHash("challenge-1".into()),
        ceremony: ceremony(),
        at: now(),
    });
    let proof = |state: &str| MfaProof::Passkey {
        state: SealedText(state.into()),
        check: checked(1, false),
    };
    let other = framework()
        .given(given.clone())
        .when_async(complete(1, proof("another ceremony")))
        .await
        .inspect_result()
        .expect("recorded");
    assert!(
        matches!(
            &other[..],
            [AccountEvent::MfaCheckFailed {
                method: MfaMethod::Passkey,
                ..
            }]
        ),
        "{other:?}"
    );
    let passed = framework()
        .given(given)
        .when_async(complete(1, proof("sealed-ceremony")))
        .await
        .inspect_result()
        .expect("passed");
    let types: Vec<String> = passed
        .iter()
        .map(cqrs_es::DomainEvent::event_type)
        .collect();
    assert_eq!(
        types,
        vec![
            AccountEvent::PASSKEY_USED,
            AccountEvent::MFA_PASSED,
            AccountEvent::SESSION_STARTED
        ],
    );
}

#[tokio::test]
async fn support_s_mfa_reset_removes_the_passkeys() {
    let reset = AccountEvent::MfaReset {
        by: account_id(),
        at: now(),
    };
    framework()
        .given(vec![registered(), passkey_registered(0), reset])
        .when_async(sign_in(checked(1, false)))
        .await
        .then_expect_events(vec![refused(PasskeyRefusal::UnknownCredential)]);
}
