//! Browsers as clients: CORS for the configured frontend origins only, no caching of API answers,
//! no content sniffing, and bodies refused by size before they are read whole.

use reqwest::{Method, StatusCode};

use crate::helpers::{assert_problem, spawn_app, spawn_with_args, PASSWORD};

const FRONTEND: &str = "https://app.example.com";

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url("/v1/me"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("sent")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn a_configured_origin_passes_the_preflight_and_reads_the_answer() {
    let app = spawn_with_args(&["--cors-origin", FRONTEND]).await;
    let allowed = preflight(&app, FRONTEND).await;
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some(FRONTEND)
    );
    let methods = header(&allowed, "access-control-allow-methods").unwrap_or_default();
    assert!(
        methods.contains("GET") && methods.contains("DELETE"),
        "{methods}"
    );
    assert!(
        header(&allowed, "access-control-allow-credentials").is_none(),
        "bearer tokens only: no credentials mode"
    );

    let session = app.signed_up("browser@example.com").await;
    let me = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(&session)
        .header("origin", FRONTEND)
        .send()
        .await
        .expect("sent");
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(
        header(&me, "access-control-allow-origin").as_deref(),
        Some(FRONTEND)
    );
}

#[tokio::test]
async fn another_origin_is_refused_with_a_problem_and_gets_no_cors_headers() {
    let app = spawn_with_args(&["--cors-origin", FRONTEND]).await;
    let refused = preflight(&app, "https://evil.example").await;
    assert!(header(&refused, "access-control-allow-origin").is_none());
    assert_problem(refused, StatusCode::FORBIDDEN, "origin_not_allowed").await;

    let session = app.signed_up("elsewhere@example.com").await;
    let me = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(&session)
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("sent");
    assert!(
        header(&me, "access-control-allow-origin").is_none(),
        "a browser on that origin cannot read the answer"
    );
}

#[tokio::test]
async fn no_origin_is_allowed_unless_configured() {
    let app = spawn_with_args(&[]).await;
    let refused = preflight(&app, FRONTEND).await;
    assert!(header(&refused, "access-control-allow-origin").is_none());
    assert_problem(refused, StatusCode::FORBIDDEN, "origin_not_allowed").await;
}

#[tokio::test]
async fn api_answers_are_never_cached_and_never_sniffed() {
    let app = spawn_with_args(&[]).await;
    app.register("nocache@example.com").await;
    let login = app
        .log_in_with("nocache@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(login.status(), StatusCode::CREATED);
    assert_eq!(header(&login, "cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        header(&login, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let refused = app.api().me().await;
    assert_eq!(
        header(&refused, "cache-control").as_deref(),
        Some("no-store")
    );
    let health = app.get("/healthz", None).await;
    assert_eq!(
        header(&health, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
}

#[tokio::test]
async fn a_body_too_large_is_refused_before_it_is_read() {
    let app = spawn_with_args(&[]).await;
    let huge = format!(
        "{{\"email\":\"big@example.com\",\"password\":\"{}\"}}",
        "x".repeat(5 * 1024 * 1024)
    );
    let response = app
        .client
        .post(app.url("/v1/accounts"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("sent");
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(accounts, 0, "nothing was registered");
}

#[tokio::test]
async fn oversized_headers_are_refused_before_any_handler_runs() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/accounts"))
        .header("x-padding", "x".repeat(20 * 1024))
        .json(&serde_json::json!({ "email": "padded@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("sent");
    assert_problem(
        response,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    )
    .await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(events, 0, "nothing was registered");
    // Ordinary headers pass.
    let fine = app
        .client
        .get(app.url("/healthz"))
        .header("x-padding", "x".repeat(1024))
        .send()
        .await
        .expect("sent");
    assert_eq!(fine.status(), StatusCode::OK);
}

/// Bodies are typed: nesting where a field takes a string fails at its first bracket, and the
/// 64 KiB bound caps what a parser walks. Deep nesting is a problem, never a crash.
#[tokio::test]
async fn a_body_nested_deep_is_refused_with_a_problem() {
    let app = spawn_with_args(&[]).await;
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    for body in [
        format!("{{\"email\":{},\"password\":\"x\"}}", deep(10_000)),
        deep(30_000),
    ] {
        let response = app
            .client
            .post(app.url("/v1/accounts"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("sent");
        assert_problem(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(events, 0, "nothing was registered");
}
