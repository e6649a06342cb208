use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::client::ChangePassword;
use crate::helpers::{assert_problem, count, reset_token_in, spawn_app, statuses_of, PASSWORD};

#[tokio::test]
async fn registration_normalizes_the_email_and_refuses_a_second_spelling() {
    let app = spawn_app().await;
    let body = app.register("  Ada@Example.COM ").await;
    assert_eq!(body["email"], "ada@example.com");
    assert!(body["id"].as_str().is_some());

    let again = app
        .post(
            "/v1/accounts",
            json!({ "email": "ADA@example.com", "password": PASSWORD }),
            None,
        )
        .await;
    assert_problem(again, StatusCode::CONFLICT, "email_taken").await;
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_create_one_account() {
    let app = spawn_app().await;
    let attempts = (0..8).map(|i| {
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            "RACE@example.com"
        };
        app.post(
            "/v1/accounts",
            json!({ "email": email, "password": PASSWORD }),
            None,
        )
    });
    let statuses = statuses_of(attempts).await;
    let created = count(&statuses, StatusCode::CREATED);
    let refused = count(&statuses, StatusCode::CONFLICT);
    assert_eq!((created, refused), (1, 7), "{statuses:?}");
    let accounts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'account.registered'")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(accounts, 1);
}

#[tokio::test]
async fn bad_registrations_get_a_problem_with_a_code() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "password": PASSWORD }),
            "invalid_email",
        ),
        (
            json!({ "email": "a@example.com", "password": "short" }),
            "password_too_short",
        ),
        (
            json!({ "email": "a@example.com", "password": "x".repeat(129) }),
            "password_too_long",
        ),
        (
            json!({ "email": "a@example.com", "password": "password123" }),
            "password_too_common",
        ),
        (
            json!({ "email": "a@example.com", "password": "qwertyuiop" }),
            "password_too_common",
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "display_name": "n".repeat(101) }),
            "display_name_too_long",
        ),
    ];
    for (body, code) in cases {
        let response = app.post("/v1/accounts", body, None).await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, code).await;
    }
    // A 128-character password is accepted whole, never truncated.
    let long: String = "Seven violet herons crossed the quarry at dawn, 42 of them; \
                        nobody in Tallinn believed it until the ferry came back in June!? Yes, really."
        .chars()
        .take(128)
        .collect();
    assert_eq!(long.chars().count(), 128);
    let response = app
        .post(
            "/v1/accounts",
            json!({ "email": "long@example.com", "password": long }),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let truncated = &long[..72];
    let response = app.log_in_with("long@example.com", truncated).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app.log_in_with("long@example.com", &long).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_bodies_are_400_problems_and_change_nothing() {
    let app = spawn_app().await;
    let raw = |body: &'static str| {
        app.client
            .post(app.url("/v1/accounts"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in ["{", "[]", "{\"email\": 5}", "{\"email\":\"a@b.c\"}", "null"] {
        let response = raw(body).await.expect("sent");
        assert_problem(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
    let no_type = app
        .client
        .post(app.url("/v1/accounts"))
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_problem(no_type, StatusCode::BAD_REQUEST, "malformed_json").await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(events, 0);
}

#[tokio::test]
async fn me_shows_the_account() {
    let app = spawn_app().await;
    let registered = app.register("me@example.com").await;
    let token = app.log_in("me@example.com").await;
    let response = app.api_as(&token).me().await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.expect("json");
    assert_eq!(me["id"], registered["id"]);
    assert_eq!(me["email"], "me@example.com");
    assert_eq!(me["display_name"], "Ada");
    assert_problem(
        app.get("/v1/me", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.get("/v1/me", Some("wss_not-a-real-token")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let here = app.signed_up("pw@example.com").await;
    let elsewhere = app.log_in("pw@example.com").await;

    let wrong = app
        .api_as(&here)
        .change_password(&ChangePassword {
            current_password: "not it at all",
            new_password: "a brand new passphrase",
        })
        .await;
    assert_problem(wrong, StatusCode::FORBIDDEN, "current_password_invalid").await;

    let weak = app
        .api_as(&here)
        .change_password(&ChangePassword {
            current_password: PASSWORD,
            new_password: "password",
        })
        .await;
    assert_problem(
        weak,
        StatusCode::UNPROCESSABLE_ENTITY,
        "password_too_common",
    )
    .await;

    let changed = app
        .api_as(&here)
        .change_password(&ChangePassword {
            current_password: PASSWORD,
            new_password: "a brand new passphrase",
        })
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.api_as(&here).me().await.status(), StatusCode::OK);
    assert_problem(
        app.api_as(&elsewhere).me().await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let old = app.log_in_with("pw@example.com", PASSWORD).await;
    assert_problem(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let new = app
        .log_in_with("pw@example.com", "a brand new passphrase")
        .await;
    assert_eq!(new.status(), StatusCode::CREATED);

    // The failed re-authentication is on record like a failed login.
    let sessions: Value = app
        .get("/v1/me/sessions", Some(&here))
        .await
        .json()
        .await
        .expect("json");
    let purposes: Vec<&str> = sessions["failed_attempts"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|f| f["purpose"].as_str())
        .collect();
    // Newest first: the login with the old password, then the wrong current password.
    assert_eq!(purposes, vec!["login", "reauthentication"]);
}

#[tokio::test]
async fn a_mailed_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let app = spawn_app().await;
    let token = app.signed_up("reset@example.com").await;

    let unknown = app
        .post(
            "/v1/password-resets",
            json!({ "email": "nobody@example.com" }),
            None,
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    assert!(
        app.mails().await.is_empty(),
        "no mail for an unknown address"
    );

    let known = app
        .post(
            "/v1/password-resets",
            json!({ "email": "Reset@Example.com" }),
            None,
        )
        .await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    let mails = app.mails().await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: reset@example.com"));
    assert!(mails[0].contains("https://app.warden.test/reset-password?token="));
    let reset = reset_token_in(&mails[0]);
    assert!(reset.starts_with("wpr_"), "{reset}");

    let confirm = |token: String| {
        app.post(
            "/v1/password-resets/confirm",
            json!({ "token": token, "new_password": "reset to something long" }),
            None,
        )
    };
    assert_eq!(
        confirm(reset.clone()).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        app.api_as(&token).me().await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_problem(
        confirm(reset).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reset_token_invalid",
    )
    .await;
    assert_problem(
        confirm("wpr_forged".into()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reset_token_invalid",
    )
    .await;
    let login = app
        .log_in_with("reset@example.com", "reset to something long")
        .await;
    assert_eq!(login.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_reset_link_expires_after_thirty_minutes() {
    let app = spawn_app().await;
    app.register("late@example.com").await;
    app.post(
        "/v1/password-resets",
        json!({ "email": "late@example.com" }),
        None,
    )
    .await;
    let reset = reset_token_in(&app.reset_mails().await[0]);
    app.clock.advance(chrono::Duration::minutes(31));
    let response = app
        .post(
            "/v1/password-resets/confirm",
            json!({ "token": reset, "new_password": "reset to something long" }),
            None,
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reset_token_invalid",
    )
    .await;
}

#[tokio::test]
async fn reset_mails_are_sent_at_most_once_a_minute() {
    let app = spawn_app().await;
    app.register("flood@example.com").await;
    let ask = || {
        app.post(
            "/v1/password-resets",
            json!({ "email": "flood@example.com" }),
            None,
        )
    };
    for _ in 0..3 {
        assert_eq!(ask().await.status(), StatusCode::ACCEPTED);
    }
    assert_eq!(app.reset_mails().await.len(), 1);
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(ask().await.status(), StatusCode::ACCEPTED);
    assert_eq!(app.reset_mails().await.len(), 2);
    // The newest link is the one that works.
    let newest = reset_token_in(&app.reset_mails().await[1]);
    let first = reset_token_in(&app.reset_mails().await[0]);
    let confirm = |token: String| {
        app.post(
            "/v1/password-resets/confirm",
            json!({ "token": token, "new_password": "a fresh passphrase here" }),
            None,
        )
    };
    assert_problem(
        confirm(first).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reset_token_invalid",
    )
    .await;
    assert_eq!(confirm(newest).await.status(), StatusCode::NO_CONTENT);
}
