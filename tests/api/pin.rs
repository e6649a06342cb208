use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, PASSWORD};

#[tokio::test]
async fn the_pin_unlocks_history_for_fifteen_minutes_and_locks_after_five_wrong_tries() {
    let app = spawn_app().await;
    let session = app.signed_up("pin@example.com").await;
    let verify =
        |pin: &'static str| app.post("/v1/me/pin/verify", json!({ "pin": pin }), Some(&session));

    assert_problem(verify("4821").await, StatusCode::CONFLICT, "pin_not_set").await;
    let bad = app
        .put(
            "/v1/me/pin",
            json!({ "pin": "12a4", "password": PASSWORD }),
            &session,
        )
        .await;
    assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_pin").await;
    let short = app
        .put(
            "/v1/me/pin",
            json!({ "pin": "123", "password": PASSWORD }),
            &session,
        )
        .await;
    assert_problem(short, StatusCode::UNPROCESSABLE_ENTITY, "invalid_pin").await;
    let wrong = app
        .put(
            "/v1/me/pin",
            json!({ "pin": "4821", "password": "not it" }),
            &session,
        )
        .await;
    assert_problem(wrong, StatusCode::FORBIDDEN, "reauthentication_failed").await;
    let set = app
        .put(
            "/v1/me/pin",
            json!({ "pin": "4821", "password": PASSWORD }),
            &session,
        )
        .await;
    assert_eq!(set.status(), StatusCode::NO_CONTENT);

    let right = verify("4821").await;
    assert_eq!(right.status(), StatusCode::OK);
    let body: Value = right.json().await.expect("json");
    let until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(body["unlocked_until"].clone()).expect("time");
    assert_eq!(until, app.clock_now() + Duration::minutes(15));

    for _ in 0..5 {
        assert_problem(verify("0000").await, StatusCode::FORBIDDEN, "pin_invalid").await;
    }
    let locked = verify("4821").await;
    let retry_after: i64 = locked
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=900).contains(&retry_after));
    assert_problem(locked, StatusCode::LOCKED, "pin_locked").await;
    app.clock.advance(Duration::minutes(15));
    assert_eq!(verify("4821").await.status(), StatusCode::OK);

    let removed = app
        .client
        .delete(app.url("/v1/me/pin"))
        .bearer_auth(&session)
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .expect("sent");
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_problem(verify("4821").await, StatusCode::CONFLICT, "pin_not_set").await;

    let stored: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM events")
        .fetch_all(&app.pool)
        .await
        .expect("events");
    assert!(
        stored.iter().all(|p| !p.contains("\"4821\"")),
        "the PIN is stored hashed"
    );
}
