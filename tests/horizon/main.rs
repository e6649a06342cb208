//! A long writing transaction elsewhere on the server, in a test binary of its own: it holds the
//! horizon of every database on the server, so it must not run beside the other integration
//! tests (cargo runs one test binary at a time).

// The helpers are shared with the API tests; this binary uses a few of them.
#![allow(dead_code)]

#[path = "../api/client.rs"]
mod client;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/processes.rs"]
mod processes;
#[path = "../support/revocations.rs"]
mod revocations;

use reqwest::StatusCode;
use serde_json::{json, Value};

use std::time::{Duration, Instant};

use crate::helpers::{fresh_database, spawn_app, PASSWORD};
use crate::processes::{hold_the_horizon, Server};
use crate::revocations::{log_out_of_all_devices, sessions, statuses, warm};

/// A writing transaction left open in another database of the same server holds back the horizon,
/// and so every view. What a person does meanwhile still works: a session or API token created
/// while the view cannot apply it is found in the log beyond the view, and a logout is in force
/// at once.
#[tokio::test]
async fn credentials_made_while_a_long_transaction_elsewhere_holds_the_views_work_at_once() {
    let app = spawn_app().await;
    app.register("held@example.com").await;
    let held = hold_the_horizon(&app.database_url).await;

    let token = app.log_in("held@example.com").await;
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.status(), StatusCode::OK, "a new session works at once");
    let created = app
        .post(
            "/v1/me/tokens",
            json!({ "name": "held", "password": PASSWORD, "scopes": ["read"] }),
            Some(&token),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let api_token: Value = created.json().await.expect("json");
    let api_token = api_token["token"].as_str().expect("token").to_string();
    let by_token = app.get("/v1/me", Some(&api_token)).await;
    assert_eq!(
        by_token.status(),
        StatusCode::OK,
        "a new API token works at once"
    );
    let held_back: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e, projector_checkpoints c
         WHERE c.name = 'credentials_v1'
           AND (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)",
    )
    .fetch_one(&app.pool)
    .await
    .expect("lag");
    assert!(held_back > 0, "the view was held back meanwhile");

    let ended = app.delete("/v1/sessions/current", &token).await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let after = app.get("/v1/me", Some(&token)).await;
    assert_eq!(
        after.status(),
        StatusCode::UNAUTHORIZED,
        "the logout is in force"
    );

    drop(held);
    app.caught_up().await;
    let sessions = app.get("/v1/me/sessions", Some(&api_token)).await;
    let sessions: Value = sessions.json().await.expect("json");
    assert_eq!(
        sessions["sessions"][0]["end_reason"], "logged_out",
        "{sessions}"
    );
}

/// A session found in the log beyond the held view takes its idle clock from the activity that
/// any process wrote, not from its start: a busy session does not idle out on a process that had
/// not seen it yet.
#[tokio::test]
async fn a_session_found_beyond_the_view_keeps_the_activity_another_process_saw() {
    let app = spawn_app().await;
    app.register("busy@example.com").await;
    let held = hold_the_horizon(&app.database_url).await;

    let token = app.log_in("busy@example.com").await;
    // Used 20 minutes after its start here, then 20 minutes later (40 after its start, past the
    // 30-minute idle timeout from the start) on a process that never saw it.
    app.clock.advance(chrono::Duration::minutes(20));
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.status(), StatusCode::OK);
    let mut written = false;
    for _ in 0..100 {
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM session_activity")
            .fetch_one(&app.pool)
            .await
            .expect("activity");
        if seen > 0 {
            written = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(written, "the use was written beside the log");
    app.clock.advance(chrono::Duration::minutes(20));
    let sibling = app.spawn_sibling().await;
    let there = sibling.get("/v1/me", Some(&token)).await;
    assert_eq!(
        there.status(),
        StatusCode::OK,
        "last seen 20 minutes ago, not 40"
    );
    drop(held);
}

/// Moved here from the revocation tests: the 20 s it holds the horizon would slow every test
/// beside it that waits for its views.
#[tokio::test]
async fn while_a_long_transaction_holds_every_view_back_a_revocation_is_in_force_everywhere() {
    let mut a = Server::new(fresh_database().await);
    let mut b = a.sibling(a.database_url.clone());
    a.start().await;
    b.start().await;
    let tokens = sessions(&a, "held@example.com", 3).await;
    warm(&[&a, &b], &tokens).await;

    let held = hold_the_horizon(&a.database_url).await;
    let holding = Instant::now();
    let (status, body) = log_out_of_all_devices(&a, &tokens[0]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A process started while the views are held back has only the log to go by.
    let mut c = a.sibling(a.database_url.clone());
    c.start().await;
    while holding.elapsed() < Duration::from_secs(20) {
        for server in [&a, &b, &c] {
            assert_eq!(
                statuses(server, &tokens).await,
                vec![StatusCode::UNAUTHORIZED; 3],
                "refused during the transaction"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(held);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for server in [&a, &b, &c] {
        assert_eq!(
            statuses(server, &tokens).await,
            vec![StatusCode::UNAUTHORIZED; 3],
            "refused after it"
        );
    }
}
