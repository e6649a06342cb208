//! The reporting PIN, through the typed client: given an account, when it sets, verifies or
//! removes its PIN, then the answer and the stored form are as promised.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::Value;

use crate::client::SetPin;
use crate::helpers::{assert_problem, spawn_app, TestApp, PASSWORD};

const PIN: &str = "4821";

/// An account with a session, and the PIN set.
async fn with_pin(app: &TestApp, email: &str) -> String {
    let session = app.signed_up(email).await;
    let set = app
        .api_as(&session)
        .set_pin(&SetPin {
            pin: PIN,
            password: PASSWORD,
        })
        .await;
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    session
}

#[tokio::test]
async fn a_pin_is_four_to_eight_digits_set_behind_the_password_and_stored_hashed() {
    let app = spawn_app().await;
    let session = app.signed_up("pin@example.com").await;
    let api = app.api_as(&session);
    assert_problem(
        api.verify_pin(PIN).await,
        StatusCode::CONFLICT,
        "pin_not_set",
    )
    .await;
    for pin in ["12a4", "123", "123456789"] {
        let bad = api
            .set_pin(&SetPin {
                pin,
                password: PASSWORD,
            })
            .await;
        assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_pin").await;
    }
    let wrong = api
        .set_pin(&SetPin {
            pin: PIN,
            password: "not it",
        })
        .await;
    assert_problem(wrong, StatusCode::FORBIDDEN, "reauthentication_failed").await;
    let set = api
        .set_pin(&SetPin {
            pin: PIN,
            password: PASSWORD,
        })
        .await;
    assert_eq!(set.status(), StatusCode::NO_CONTENT);

    let stored: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM events")
        .fetch_all(&app.pool)
        .await
        .expect("events");
    assert!(
        stored.iter().any(|p| p.contains("PinSet")),
        "the PIN is on record"
    );
    assert!(
        stored.iter().all(|p| !p.contains(&format!("\"{PIN}\""))),
        "the PIN is stored hashed"
    );
}

#[tokio::test]
async fn the_right_pin_unlocks_history_for_fifteen_minutes() {
    let app = spawn_app().await;
    let session = with_pin(&app, "unlock@example.com").await;
    let right = app.api_as(&session).verify_pin(PIN).await;
    assert_eq!(right.status(), StatusCode::OK);
    let body: Value = right.json().await.expect("json");
    let until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(body["unlocked_until"].clone()).expect("time");
    assert_eq!(until, app.clock_now() + Duration::minutes(15));
}

#[tokio::test]
async fn five_wrong_pins_lock_verification_for_fifteen_minutes() {
    let app = spawn_app().await;
    let session = with_pin(&app, "locked@example.com").await;
    let api = app.api_as(&session);
    for _ in 0..5 {
        assert_problem(
            api.verify_pin("0000").await,
            StatusCode::FORBIDDEN,
            "pin_invalid",
        )
        .await;
    }
    let locked = api.verify_pin(PIN).await;
    let retry_after: i64 = locked
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=900).contains(&retry_after));
    assert_problem(locked, StatusCode::LOCKED, "pin_locked").await;
    app.clock.advance(Duration::minutes(15));
    assert_eq!(api.verify_pin(PIN).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_removed_pin_no_longer_verifies() {
    let app = spawn_app().await;
    let session = with_pin(&app, "removed@example.com").await;
    let api = app.api_as(&session);
    let wrong = api.remove_pin("not it").await;
    assert_problem(wrong, StatusCode::FORBIDDEN, "reauthentication_failed").await;
    assert_eq!(
        api.remove_pin(PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        api.verify_pin(PIN).await,
        StatusCode::CONFLICT,
        "pin_not_set",
    )
    .await;
}
