//! API tokens: creation behind the password, use, expiry, rate limits, revocation.

use super::fixtures::*;

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
