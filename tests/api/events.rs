//! The global event stream: commit order, every committed event exactly once per position, no
//! secrets, resumable across reconnects and server restarts.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::settle;
use crate::helpers::{assert_problem, spawn_app, TestApp, PASSWORD};
use crate::ordering::{append, spawn_racing_writers};

async fn read_page(app: &TestApp, token: &str, after: &str, limit: i64) -> Value {
    let response = app
        .get(
            &format!("/v1/events?after={after}&limit={limit}"),
            Some(token),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Pages from `after` until a page comes back empty; returns the events and the last cursor.
async fn read_all(app: &TestApp, token: &str, mut after: String) -> (Vec<Value>, String) {
    let mut events = Vec::new();
    loop {
        let page = read_page(app, token, &after, 7).await;
        let batch = page["events"].as_array().expect("events").clone();
        after = page["next"].as_str().expect("next").to_string();
        if batch.is_empty() {
            return (events, after);
        }
        events.extend(batch);
    }
}

pub async fn ids_in_commit_order(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT aggregate_type || ':' || aggregate_id || ':' || sequence FROM events
         ORDER BY transaction_id, global_position",
    )
    .fetch_all(&app.pool)
    .await
    .expect("events")
}

#[tokio::test]
async fn the_stream_is_every_event_in_commit_order_as_cloud_events_without_secrets() {
    let app = spawn_app().await;
    let email = "streamed@example.com";
    let user = app.signed_up(email).await;
    let created: Value = app
        .post(
            "/v1/me/tokens",
            json!({ "name": "ci", "password": PASSWORD }),
            Some(&user),
        )
        .await
        .json()
        .await
        .expect("json");
    let api_token = created["token"].as_str().expect("token").to_string();
    let admin = app.admin("data.team@example.com").await;

    let refused = app.get("/v1/events", Some(&user)).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "admin_required").await;
    let bad = app.get("/v1/events?after=yesterday", Some(&admin)).await;
    assert_problem(bad, StatusCode::BAD_REQUEST, "invalid_cursor").await;

    // A token with `events:read` (only an admin may grant it) reads the stream too.
    let reader: Value = app
        .post(
            "/v1/me/tokens",
            json!({ "name": "pipeline", "password": PASSWORD, "scopes": ["events:read"] }),
            Some(&admin),
        )
        .await
        .json()
        .await
        .expect("json");
    let reader = reader["token"].as_str().expect("token").to_string();
    // Its first use is recorded after the answer: let that land before the log is compared.
    read_page(&app, &reader, "0.0", 1).await;
    for _ in 0..200 {
        let first_uses: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
                .bind(warden_aggregates::account::AccountEvent::API_TOKEN_FIRST_USED)
                .fetch_one(&app.pool)
                .await
                .expect("count");
        if first_uses > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    settle(&app.pool).await;
    let (events, _) = read_all(&app, &reader, "0.0".into()).await;
    let ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(
        ids,
        ids_in_commit_order(&app).await,
        "every event, commit order"
    );

    let registered = events
        .iter()
        .find(|e| e["type"] == "account.registered")
        .expect("registration streamed");
    assert_eq!(registered["specversion"], "1.0");
    assert_eq!(registered["source"], "/warden/accounts");
    assert_eq!(registered["datacontenttype"], "application/json");
    assert!(registered["time"].is_string());
    assert!(registered["position"].is_string());
    assert_eq!(registered["data"]["email"], email, "opened for the reader");
    assert_eq!(registered["data"]["password_hash"], "[redacted]");
    let session = events
        .iter()
        .find(|e| e["type"] == "account.session.started")
        .expect("login streamed");
    assert_eq!(
        session["actor"], registered["subject"],
        "the account logged itself in"
    );
    assert_eq!(session["useragent"], "warden-tests/1.0");

    let text = serde_json::to_string(&events).expect("json");
    for secret in [PASSWORD, user.as_str(), api_token.as_str(), "$argon2id$"] {
        assert!(!text.contains(secret), "{secret} leaked into the stream");
    }
}

#[tokio::test]
async fn a_late_committing_transaction_is_streamed_in_its_place_not_skipped() {
    let app = spawn_app().await;
    let admin = app.admin("data.team@example.com").await;
    settle(&app.pool).await;
    let (_, start) = read_all(&app, &admin, "0.0".into()).await;

    // An early transaction takes its id first, a later one commits first.
    let mut early = app.pool.begin().await.expect("tx");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *early)
        .await
        .expect("xid");
    append(&mut early, "early", 1).await;
    {
        let mut conn = app.pool.acquire().await.expect("connection");
        append(&mut conn, "late", 1).await;
    }
    let page = read_page(&app, &admin, &start, 100).await;
    assert_eq!(
        page["events"],
        json!([]),
        "the later commit waits for the earlier one"
    );
    assert_eq!(page["next"], start.as_str());

    early.commit().await.expect("commit");
    settle(&app.pool).await;
    let (events, _) = read_all(&app, &admin, start).await;
    let subjects: Vec<&str> = events
        .iter()
        .map(|e| e["subject"].as_str().expect("subject"))
        .collect();
    assert_eq!(subjects, ["early", "late"], "commit order, nothing skipped");
}

#[tokio::test]
async fn a_paging_reader_gets_every_commit_once_while_writers_race_and_the_server_restarts() {
    let app = spawn_app().await;
    let admin = app.admin("data.team@example.com").await;
    let (writers, committed) = spawn_racing_writers(&app.pool, 4, 30);

    // The reader pages while the writers run; half-way the server it reads from stops and it
    // carries on against a new process with nothing but its cursor.
    let mut received: Vec<String> = Vec::new();
    let mut after = "0.0".to_string();
    let mut server = app;
    let mut restarted = None;
    for round in 0..40 {
        if round == 20 {
            let next = server.spawn_sibling().await;
            server.stop().await;
            restarted = Some(server);
            server = next;
        }
        let page = read_page(&server, &admin, &after, 5).await;
        for event in page["events"].as_array().expect("events") {
            received.push(event["id"].as_str().expect("id").to_string());
        }
        after = page["next"].as_str().expect("next").to_string();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    settle(&server.pool).await;
    let (rest, _) = read_all(&server, &admin, after).await;
    received.extend(
        rest.iter()
            .map(|e| e["id"].as_str().expect("id").to_string()),
    );
    assert!(restarted.is_some());

    let mut unique = HashSet::new();
    let twice: Vec<&String> = received.iter().filter(|id| !unique.insert(*id)).collect();
    assert!(
        twice.is_empty(),
        "no event twice: {twice:?} in {received:?}"
    );
    let test_events: HashSet<String> = received
        .iter()
        .filter(|id| id.starts_with("test:"))
        .cloned()
        .collect();
    let committed: HashSet<String> = committed
        .lock()
        .expect("lock")
        .iter()
        .map(|(id, sequence)| format!("test:{id}:{sequence}"))
        .collect();
    assert_eq!(test_events, committed, "every commit");
    assert_eq!(received, ids_in_commit_order(&server).await, "commit order");
}

/// Reads server-sent events until `count` have arrived; returns their `(id, type)`.
async fn sse_events(response: &mut reqwest::Response, count: usize) -> Vec<(String, Value)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("an event within 10 s")
            .expect("stream readable")
            .expect("stream still open");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(value) = line.strip_prefix("id: ") {
                    id = Some(value.to_string());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str::<Value>(value).expect("json data"));
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                assert_eq!(data["position"], id.as_str());
                events.push((id, data));
            }
        }
    }
    events
}

#[tokio::test]
async fn the_live_stream_delivers_new_commits_and_resumes_from_last_event_id() {
    let app = spawn_app().await;
    let admin = app.admin("data.team@example.com").await;
    settle(&app.pool).await;
    let before = ids_in_commit_order(&app).await;

    let mut live = app
        .client
        .get(app.url("/v1/events/stream"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("stream opened");
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(
        live.headers()["content-type"].to_str().expect("ascii"),
        "text/event-stream"
    );
    let history = sse_events(&mut live, before.len()).await;
    let ids: Vec<&str> = history
        .iter()
        .map(|(_, e)| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, before, "the log so far, in order");

    // A registration while the stream is open arrives without asking.
    let email = format!("{}@example.com", Uuid::new_v4().simple());
    app.register(&email).await;
    let new = sse_events(&mut live, 1).await;
    assert_eq!(new[0].1["type"], "account.registered");
    drop(live);

    // Reconnecting with the last id received continues right after it.
    app.log_in(&email).await;
    let mut resumed = app
        .client
        .get(app.url("/v1/events/stream"))
        .bearer_auth(&admin)
        .header("Last-Event-ID", new[0].0.as_str())
        .send()
        .await
        .expect("stream opened");
    let next = sse_events(&mut resumed, 1).await;
    assert_eq!(next[0].1["type"], "account.session.started");

    let bad = app
        .client
        .get(app.url("/v1/events/stream"))
        .bearer_auth(&admin)
        .header("Last-Event-ID", "not-a-position")
        .send()
        .await
        .expect("answered");
    assert_problem(bad, StatusCode::BAD_REQUEST, "invalid_cursor").await;
}
