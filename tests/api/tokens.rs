use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, count, spawn_app, statuses_of, TestApp, PASSWORD};

async fn create_token(app: &TestApp, session: &str, body: Value) -> reqwest::Response {
    app.post("/v1/me/tokens", body, Some(session)).await
}

/// Creates a token with `scopes` and returns (id, token).
async fn token_with(app: &TestApp, session: &str, name: &str, scopes: Value) -> (String, String) {
    let response = create_token(
        app,
        session,
        json!({ "name": name, "password": PASSWORD, "scopes": scopes }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    (
        body["id"].as_str().expect("id").to_string(),
        body["token"].as_str().expect("token").to_string(),
    )
}

#[tokio::test]
async fn a_token_is_created_after_reentering_the_password_and_shown_once() {
    let app = spawn_app().await;
    let session = app.signed_up("tokens@example.com").await;

    let missing = app
        .client
        .post(app.url("/v1/me/tokens"))
        .bearer_auth(&session)
        .json(&json!({ "name": "ci" }))
        .send()
        .await
        .expect("sent");
    assert_problem(missing, StatusCode::BAD_REQUEST, "malformed_json").await;
    let wrong = create_token(
        &app,
        &session,
        json!({ "name": "ci", "password": "not mine" }),
    )
    .await;
    assert_problem(wrong, StatusCode::FORBIDDEN, "password_invalid").await;

    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let response = create_token(
        &app,
        &session,
        json!({ "name": "ci", "password": PASSWORD, "scopes": ["read", "write"], "expires_at": expires }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("json");
    let token = created["token"].as_str().expect("token");
    assert!(token.starts_with("wat_") && token.len() >= 4 + 43);
    assert_eq!(created["scopes"], json!(["read", "write"]));
    assert_eq!(created["name"], "ci");

    let listed: Value = app
        .get("/v1/me/tokens", Some(&session))
        .await
        .json()
        .await
        .expect("json");
    let tokens = listed["tokens"].as_array().expect("array");
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["id"], created["id"]);
    assert!(tokens[0]["last_used_at"].is_null());
    assert!(
        !listed.to_string().contains(&token[4..]),
        "the secret is never listed"
    );

    // Used once: the list shows when, once it is written behind (within a second or two).
    assert_eq!(app.api_as(token).me().await.status(), StatusCode::OK);
    let mut last_used = Value::Null;
    for _ in 0..40 {
        let listed: Value = app
            .get("/v1/me/tokens", Some(&session))
            .await
            .json()
            .await
            .expect("json");
        last_used = listed["tokens"][0]["last_used_at"].clone();
        if !last_used.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        last_used.is_string(),
        "last use written behind: {last_used}"
    );

    let same_name = create_token(
        &app,
        &session,
        json!({ "name": "ci", "password": PASSWORD }),
    )
    .await;
    assert_problem(same_name, StatusCode::CONFLICT, "token_name_taken").await;
    let past = create_token(
        &app,
        &session,
        json!({ "name": "old", "password": PASSWORD, "expires_at": "2001-01-01T00:00:00Z" }),
    )
    .await;
    assert_problem(past, StatusCode::UNPROCESSABLE_ENTITY, "expires_at_in_past").await;
    let bad_scope = create_token(
        &app,
        &session,
        json!({ "name": "x", "password": PASSWORD, "scopes": ["everything"] }),
    )
    .await;
    assert_problem(bad_scope, StatusCode::BAD_REQUEST, "malformed_json").await;
    let admin = create_token(
        &app,
        &session,
        json!({ "name": "x", "password": PASSWORD, "scopes": ["admin"] }),
    )
    .await;
    assert_problem(admin, StatusCode::FORBIDDEN, "scope_not_allowed").await;
    let blank = create_token(
        &app,
        &session,
        json!({ "name": "  ", "password": PASSWORD }),
    )
    .await;
    assert_problem(
        blank,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_token_name",
    )
    .await;
}

#[tokio::test]
async fn a_failed_reauthentication_for_a_token_counts_toward_lockout() {
    let app = spawn_app().await;
    let session = app.signed_up("reauth@example.com").await;
    for _ in 0..10 {
        let wrong =
            create_token(&app, &session, json!({ "name": "ci", "password": "guess" })).await;
        assert_problem(wrong, StatusCode::FORBIDDEN, "password_invalid").await;
    }
    let locked = create_token(
        &app,
        &session,
        json!({ "name": "ci", "password": PASSWORD }),
    )
    .await;
    assert_problem(locked, StatusCode::LOCKED, "account_locked").await;
    let login = app.log_in_with("reauth@example.com", PASSWORD).await;
    assert_problem(login, StatusCode::LOCKED, "account_locked").await;
}

#[tokio::test]
async fn a_token_acts_only_within_its_scopes_and_never_mints_tokens() {
    let app = spawn_app().await;
    let session = app.signed_up("scopes@example.com").await;
    let (_, reader) = token_with(&app, &session, "reader", json!(["read"])).await;
    let (_, writer) = token_with(&app, &session, "writer", json!(["write"])).await;

    assert_eq!(app.api_as(&reader).me().await.status(), StatusCode::OK);
    assert_eq!(
        app.api_as(&reader).sessions().await.status(),
        StatusCode::OK
    );
    let revoke_all = app
        .post("/v1/me/sessions/revoke-all", json!({}), Some(&reader))
        .await;
    assert_problem(revoke_all, StatusCode::FORBIDDEN, "insufficient_scope").await;
    assert_problem(
        app.api_as(&writer).me().await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;

    for token in [&reader, &writer] {
        let mint = create_token(
            &app,
            token,
            json!({ "name": "child", "password": PASSWORD }),
        )
        .await;
        assert_problem(mint, StatusCode::FORBIDDEN, "session_required").await;
        let password = app
            .put(
                "/v1/me/password",
                json!({ "current_password": PASSWORD, "new_password": "a new passphrase here" }),
                token,
            )
            .await;
        assert_problem(password, StatusCode::FORBIDDEN, "session_required").await;
        let logout = app.api_as(token).log_out().await;
        assert_problem(logout, StatusCode::FORBIDDEN, "session_required").await;
    }
    // The session was never touched by any of that.
    assert_eq!(app.api_as(&session).me().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused_everywhere() {
    let one = spawn_app().await;
    let two = one.spawn_sibling().await;
    let session = one.signed_up("revoke@example.com").await;
    let (id, token) = token_with(&one, &session, "short", json!(["read"])).await;
    assert_eq!(
        two.get("/v1/me", Some(&token)).await.status(),
        StatusCode::OK
    );
    let revoked = one.delete(&format!("/v1/me/tokens/{id}"), &session).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_problem(
        two.get("/v1/me", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_problem(
        one.get("/v1/me", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let again = one.delete(&format!("/v1/me/tokens/{id}"), &session).await;
    assert_problem(again, StatusCode::NOT_FOUND, "token_not_found").await;
    let listed: Value = one
        .get("/v1/me/tokens", Some(&session))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["tokens"], json!([]));

    let expires = (one.clock_now() + chrono::Duration::hours(1)).to_rfc3339();
    let response = create_token(
        &one,
        &session,
        json!({ "name": "hour", "password": PASSWORD, "expires_at": expires }),
    )
    .await;
    let hour: Value = response.json().await.expect("json");
    let hour = hour["token"].as_str().expect("token").to_string();
    assert_eq!(
        one.get("/v1/me", Some(&hour)).await.status(),
        StatusCode::OK
    );
    one.clock.advance(chrono::Duration::minutes(61));
    assert_problem(
        one.get("/v1/me", Some(&hour)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_problem(
        two.get("/v1/me", Some(&hour)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let expired: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'account.api_token.expired'",
    )
    .fetch_one(&one.pool)
    .await
    .expect("count");
    assert_eq!(expired, 1, "recorded once");
}

fn header(response: &reqwest::Response, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn sixty_requests_a_minute_pass_and_the_sixty_first_waits() {
    let app = spawn_app().await;
    let session = app.signed_up("limit@example.com").await;
    let (_, token) = token_with(&app, &session, "busy", json!(["read"])).await;
    for n in 1..=60u64 {
        let response = app.api_as(&token).me().await;
        assert_eq!(response.status(), StatusCode::OK, "request {n}");
        assert_eq!(header(&response, "ratelimit-limit"), Some(60));
        assert_eq!(header(&response, "ratelimit-remaining"), Some(60 - n));
        assert!(header(&response, "ratelimit-reset").is_some_and(|r| (1..=60).contains(&r)));
    }
    let refused = app.api_as(&token).me().await;
    let retry_after = header(&refused, "retry-after").expect("Retry-After");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&refused, "ratelimit-remaining"), Some(0));
    assert_problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    for _ in 0..5 {
        let refused = app.api_as(&token).me().await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    // Sessions are not limited by this rule.
    for _ in 0..70 {
        assert_eq!(app.api_as(&session).me().await.status(), StatusCode::OK);
    }
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'account.api_token.rate_limited'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(recorded, 1, "one event a minute, not one per refusal");

    // The window refills: after a minute the token is let in again.
    app.clock.advance(chrono::Duration::seconds(61));
    let response = app.api_as(&token).me().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "ratelimit-remaining"), Some(59));
}

#[tokio::test]
async fn two_processes_share_one_limit() {
    let one = spawn_app().await;
    let two = one.spawn_sibling().await;
    let session = one.signed_up("shared@example.com").await;
    let (_, token) = token_with(&one, &session, "shared", json!(["read"])).await;
    let requests = (0..80).map(|n| {
        let app = if n % 2 == 0 { &one } else { &two };
        app.api_as(&token).me()
    });
    let statuses = statuses_of(requests).await;
    let passed = count(&statuses, StatusCode::OK);
    let limited = count(&statuses, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!((passed, limited), (60, 20), "{statuses:?}");
}
