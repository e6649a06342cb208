//! Histories, commands and fakes the account tests are written with.

pub(super) use std::sync::Arc;

pub(super) use async_trait::async_trait;
pub(super) use chrono::{DateTime, Duration, TimeZone, Utc};
pub(super) use cqrs_es::test::TestFramework;
pub(super) use secrecy::{ExposeSecret, SecretString};
pub(super) use uuid::Uuid;

pub(super) use crate::account::*;
pub(super) use crate::shared::{
    AccountId, Clock, PasswordHash, Scope, SealedText, SessionId, TokenHash, TokenId, TotpCode,
    WorkspaceId,
};

pub(super) struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Stands in for argon2: a hash `plain:<password>` matches that password.
pub(super) struct PlainPasswords;

#[async_trait]
impl PasswordVerifier for PlainPasswords {
    async fn verify(&self, hash: &PasswordHash, candidate: &SecretString) -> bool {
        hash.0 == format!("plain:{}", candidate.expose_secret())
    }
}

pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0)
        .single()
        .expect("valid")
}

/// Stands in for RFC 6238: for the secret `totp-secret`, code `111111` is step 100 and
/// `222222` is step 101.
pub(super) struct FakeTotp;

impl TotpVerifier for FakeTotp {
    fn matching_step(&self, secret: &SealedText, code: &TotpCode, _: DateTime<Utc>) -> Option<u64> {
        match (secret.0.as_str(), code.as_str()) {
            ("totp-secret", "111111") => Some(100),
            ("totp-secret", "222222") => Some(101),
            _ => None,
        }
    }
}

pub(super) fn services() -> AccountServices {
    AccountServices {
        clock: Arc::new(FixedClock(now())),
        passwords: Arc::new(PlainPasswords),
        totp: Arc::new(FakeTotp),
        policy: SecurityPolicy::default(),
    }
}

pub(super) fn framework() -> TestFramework<Account> {
    TestFramework::with(services())
}

pub(super) fn account_id() -> AccountId {
    AccountId(Uuid::from_u128(1))
}

pub(super) fn session_id(n: u128) -> SessionId {
    SessionId(Uuid::from_u128(100 + n))
}

pub(super) fn registered() -> AccountEvent {
    AccountEvent::Registered {
        account_id: account_id(),
        email: SealedText("sealed-email".into()),
        display_name: None,
        password_hash: PasswordHash("plain:correct horse".into()),
        at: now() - Duration::days(1),
    }
}

pub(super) fn session_started(n: u128, at: DateTime<Utc>) -> AccountEvent {
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
        sso: None,
        device_hash: None,
        new_device: false,
    }
}

pub(super) fn failures(count: u32) -> Vec<AccountEvent> {
    (1..=count)
        .map(|n| AccountEvent::PasswordCheckFailed {
            purpose: PasswordCheckPurpose::Login,
            consecutive_failures: n,
            at: now() - Duration::hours(1),
        })
        .collect()
}

pub(super) fn log_in(password: &str, n: u128) -> AccountCommand {
    AccountCommand::from(SessionCommand::LogIn {
        password: SecretString::from(password),
        session: NewSession {
            session_id: session_id(n),
            token_hash: TokenHash(format!("hash-{n}")),
            device: None,
            method: AuthMethod::Password,
            sso: None,
            device_hash: None,
        },
        challenge_hash: TokenHash(format!("challenge-{n}")),
        mfa_required_by: vec![],
    })
}

pub(super) fn reset_requested(expires_at: DateTime<Utc>) -> AccountEvent {
    AccountEvent::PasswordResetRequested {
        token_hash: TokenHash("reset".into()),
        expires_at,
        at: now() - Duration::minutes(5),
        mail_nonce: None,
    }
}

pub(super) fn reset_with(token: &str) -> AccountCommand {
    AccountCommand::from(PasswordCommand::Reset {
        token_hash: TokenHash(token.into()),
        new_password_hash: PasswordHash("plain:new one".into()),
    })
}

pub(super) fn token_created(
    n: u128,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> AccountEvent {
    AccountEvent::ApiTokenCreated {
        token_id: TokenId(Uuid::from_u128(500 + n)),
        name: name.into(),
        token_hash: TokenHash(format!("token-{n}")),
        scopes: vec![Scope::Read],
        expires_at,
        at: now() - Duration::hours(1),
    }
}

pub(super) fn create_token(
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

pub(super) fn totp_on() -> Vec<AccountEvent> {
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

pub(super) fn challenged(n: u128) -> AccountEvent {
    AccountEvent::MfaChallengeIssued {
        challenge_hash: TokenHash(format!("challenge-{n}")),
        device: None,
        methods: vec![MfaMethod::Totp, MfaMethod::RecoveryCode],
        expires_at: now() + Duration::minutes(5),
        at: now(),
        required_by: vec![],
    }
}

pub(super) fn complete(n: u128, proof: MfaProof) -> AccountCommand {
    AccountCommand::from(MfaCommand::Complete {
        challenge_hash: TokenHash(format!("challenge-{n}")),
        proof,
        session: NewSession {
            session_id: session_id(n),
            token_hash: TokenHash(format!("hash-{n}")),
            device: None,
            method: AuthMethod::Password,
            sso: None,
            device_hash: None,
        },
    })
}

pub(super) fn code(text: &str) -> TotpCode {
    TotpCode::parse(text).expect("six digits")
}

pub(super) fn mfa_session(n: u128, method: AuthMethod) -> AccountEvent {
    let mut event = session_started(n, now());
    if let AccountEvent::SessionStarted { method: m, .. } = &mut event {
        *m = method;
    }
    event
}

pub(super) fn pin_set() -> AccountEvent {
    AccountEvent::PinSet {
        pin_hash: PasswordHash("plain:4321".into()),
        at: now() - Duration::hours(1),
    }
}

pub(super) fn verify_pin(pin: &str) -> AccountCommand {
    AccountCommand::from(PinCommand::Verify {
        pin: SecretString::from(pin),
        session_id: session_id(1),
    })
}
