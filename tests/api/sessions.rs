use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, count, spawn_app, statuses_of, PASSWORD};

#[tokio::test]
async fn login_issues_a_session_token_and_logout_ends_it() {
    let app = spawn_app().await;
    app.register("login@example.com").await;
    let response = app.log_in_with("LOGIN@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "authenticated");
    let token = body["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("wss_") && token.len() >= 4 + 43);
    assert_eq!(app.api_as(&token).me().await.status(), StatusCode::OK);

    let out = app.api_as(&token).log_out().await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.api_as(&token).me().await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("known@example.com").await;
    let wrong = app
        .log_in_with("known@example.com", "not the password")
        .await;
    let wrong = assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unknown = app
        .log_in_with("unknown@example.com", "not the password")
        .await;
    let unknown = assert_problem(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(wrong, unknown);
    let malformed = app.log_in_with("no at sign", "not the password").await;
    assert_problem(malformed, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn ten_failures_lock_with_growing_windows_and_a_success_resets_them() {
    let app = spawn_app().await;
    app.register("lock@example.com").await;
    for _ in 0..10 {
        let response = app.log_in_with("lock@example.com", "wrong password").await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    // Locked for a minute. A wrong password learns nothing of it: the answer is the one an
    // unknown address gets, and it is not counted.
    let wrong = app.log_in_with("lock@example.com", "wrong password").await;
    let wrong = assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unknown = app
        .log_in_with("nobody@example.com", "wrong password")
        .await;
    let unknown = assert_problem(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(wrong, unknown);
    // Only the right password is told of the lock, with Retry-After.
    let locked = app.log_in_with("lock@example.com", PASSWORD).await;
    let retry_after: u64 = locked
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(locked, StatusCode::LOCKED, "account_locked").await;

    // The 11th failure doubles the window to two minutes.
    app.clock.advance(chrono::Duration::seconds(61));
    let eleventh = app.log_in_with("lock@example.com", "wrong again").await;
    assert_problem(eleventh, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    app.clock.advance(chrono::Duration::seconds(61));
    let still = app.log_in_with("lock@example.com", PASSWORD).await;
    assert_problem(still, StatusCode::LOCKED, "account_locked").await;

    app.clock.advance(chrono::Duration::seconds(60));
    let token = app.log_in("lock@example.com").await;
    // The count started again: one more failure does not lock.
    let once = app.log_in_with("lock@example.com", "wrong password").await;
    assert_problem(once, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(
        app.log_in_with("lock@example.com", PASSWORD).await.status(),
        StatusCode::CREATED
    );

    let history: Value = app
        .get("/v1/me/sessions", Some(&token))
        .await
        .json()
        .await
        .expect("json");
    let failures = history["failed_attempts"].as_array().expect("array");
    assert_eq!(failures.len(), 12);
    assert_eq!(failures[0]["ip"], "127.0.0.1");
    assert_eq!(failures[0]["user_agent"], "warden-tests/1.0");
}

#[tokio::test]
async fn the_session_list_shows_current_and_ended_sessions_newest_first() {
    let app = spawn_app().await;
    let first = app.signed_up("list@example.com").await;
    app.clock.advance(chrono::Duration::seconds(5));
    let second = app.log_in("list@example.com").await;
    app.clock.advance(chrono::Duration::seconds(5));
    let third = app.log_in("list@example.com").await;
    assert_eq!(
        app.api_as(&first).log_out().await.status(),
        StatusCode::NO_CONTENT
    );

    let body: Value = app
        .get("/v1/me/sessions", Some(&second))
        .await
        .json()
        .await
        .expect("json");
    let sessions = body["sessions"].as_array().expect("array");
    assert_eq!(sessions.len(), 3);
    let started: Vec<&str> = sessions
        .iter()
        .map(|s| s["started_at"].as_str().expect("time"))
        .collect();
    let mut sorted = started.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(started, sorted, "newest first");
    let current: Vec<bool> = sessions
        .iter()
        .map(|s| s["current"].as_bool().expect("bool"))
        .collect();
    assert_eq!(current, vec![false, true, false]);
    assert_eq!(sessions[2]["end_reason"], "logged_out");
    assert!(sessions[2]["ended_at"].is_string());
    for session in sessions {
        for field in [
            "id",
            "device",
            "ip",
            "user_agent",
            "method",
            "started_at",
            "last_seen_at",
        ] {
            assert!(session[field].is_string(), "{field} in {session}");
        }
        assert_eq!(session["device"], "test laptop");
        assert_eq!(session["method"], "password");
    }
    assert!(sessions[0]["ended_at"].is_null());

    // Ending another session by id.
    let third_id = sessions[0]["id"].as_str().expect("id").to_string();
    let ended = app
        .delete(&format!("/v1/me/sessions/{third_id}"), &second)
        .await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.api_as(&third).me().await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let again = app
        .delete(&format!("/v1/me/sessions/{third_id}"), &second)
        .await;
    assert_problem(again, StatusCode::NOT_FOUND, "session_not_found").await;
    let bad = app.delete("/v1/me/sessions/not-a-uuid", &second).await;
    assert_problem(bad, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn another_accounts_session_cannot_be_ended() {
    let app = spawn_app().await;
    let mine = app.signed_up("mine@example.com").await;
    let theirs = app.signed_up("theirs@example.com").await;
    let body: Value = app
        .get("/v1/me/sessions", Some(&theirs))
        .await
        .json()
        .await
        .expect("json");
    let their_id = body["sessions"][0]["id"].as_str().expect("id").to_string();
    let response = app
        .delete(&format!("/v1/me/sessions/{their_id}"), &mine)
        .await;
    assert_problem(response, StatusCode::NOT_FOUND, "session_not_found").await;
    assert_eq!(app.api_as(&theirs).me().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoke_all_ends_every_session_including_the_callers() {
    let app = spawn_app().await;
    let a = app.signed_up("all@example.com").await;
    let b = app.log_in("all@example.com").await;
    let c = app.log_in("all@example.com").await;
    let response = app
        .post("/v1/me/sessions/revoke-all", json!({}), Some(&a))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["revoked"], 3);
    for token in [&a, &b, &c] {
        assert_problem(
            app.api_as(token).me().await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
}

#[tokio::test]
async fn a_revocation_on_one_process_is_refused_by_another_immediately() {
    let one = spawn_app().await;
    let two = one.spawn_sibling().await;
    let token = one.signed_up("twice@example.com").await;
    let other = one.log_in("twice@example.com").await;
    // Both processes accept the sessions.
    assert_eq!(
        two.get("/v1/me", Some(&token)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        two.get("/v1/me", Some(&other)).await.status(),
        StatusCode::OK
    );

    let response = one
        .post("/v1/me/sessions/revoke-all", json!({}), Some(&token))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_problem(
        two.get("/v1/me", Some(&other)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // And the other way round, for a single logout.
    let again = two.log_in("twice@example.com").await;
    assert_eq!(
        one.get("/v1/me", Some(&again)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        two.delete("/v1/sessions/current", &again).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        one.get("/v1/me", Some(&again)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn sessions_end_after_thirty_idle_minutes_and_twelve_hours_in_all() {
    let app = spawn_app().await;
    let token = app.signed_up("idle@example.com").await;
    app.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(app.api_as(&token).me().await.status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(
        app.api_as(&token).me().await.status(),
        StatusCode::OK,
        "use keeps it alive"
    );
    app.clock.advance(chrono::Duration::minutes(31));
    assert_problem(
        app.api_as(&token).me().await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    let busy = app.log_in("idle@example.com").await;
    // 24 × 29 minutes: busy, never idle, and still inside the 12 hours.
    for _ in 0..24 {
        app.clock.advance(chrono::Duration::minutes(29));
        assert_eq!(app.api_as(&busy).me().await.status(), StatusCode::OK);
    }
    app.clock.advance(chrono::Duration::minutes(25));
    assert_problem(
        app.api_as(&busy).me().await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    let fresh = app.log_in("idle@example.com").await;
    let body: Value = app
        .get("/v1/me/sessions", Some(&fresh))
        .await
        .json()
        .await
        .expect("json");
    let reasons: Vec<&str> = body["sessions"]
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["end_reason"].as_str().unwrap_or("live"))
        .collect();
    assert_eq!(reasons, vec!["live", "expired", "idle_timeout"]);
}

/// Wrong passwords sent at once through two processes lock the account exactly as through one:
/// ten failures counted, one lock; every later wrong attempt is answered like the first ones
/// (as for an unknown address) and not counted.
#[tokio::test]
async fn concurrent_failures_through_two_processes_lock_after_exactly_ten() {
    let one = spawn_app().await;
    let two = one.spawn_sibling().await;
    one.register("raced@example.com").await;
    let attempts = (0..24).map(|i| {
        let app = if i % 2 == 0 { &one } else { &two };
        app.log_in_with("raced@example.com", "wrong password")
    });
    let statuses = statuses_of(attempts).await;
    assert_eq!(
        count(&statuses, StatusCode::UNAUTHORIZED),
        24,
        "{statuses:?}"
    );
    let counted: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, count(*) FROM events
         WHERE event_type IN ('account.password.check_failed', 'account.locked_out')
         GROUP BY event_type ORDER BY event_type",
    )
    .fetch_all(&one.pool)
    .await
    .expect("events");
    assert_eq!(
        counted,
        vec![
            ("account.locked_out".to_string(), 1),
            ("account.password.check_failed".to_string(), 10)
        ]
    );
    // The right password is refused by both processes while the lock lasts.
    for app in [&one, &two] {
        let locked = app.log_in_with("raced@example.com", PASSWORD).await;
        assert_problem(locked, StatusCode::LOCKED, "account_locked").await;
    }
}

/// Last-seen times are written behind (at most once a minute per session per process, flushed
/// each second): a session kept busy on one process is not idle on another, and one left alone
/// still times out on both.
#[tokio::test]
async fn a_session_used_on_one_process_stays_alive_on_another_and_idles_out_on_both() {
    let one = spawn_app().await;
    let two = one.spawn_sibling().await;
    let token = one.signed_up("busy.elsewhere@example.com").await;
    assert_eq!(one.api_as(&token).me().await.status(), StatusCode::OK);
    one.clock.advance(chrono::Duration::minutes(29));
    // PostgreSQL keeps microseconds.
    let written = one.clock_now() - chrono::Duration::milliseconds(1);
    assert_eq!(two.api_as(&token).me().await.status(), StatusCode::OK);
    // Written behind by `two` within a second or so.
    let mut seen: Option<chrono::DateTime<chrono::Utc>> = None;
    for _ in 0..50 {
        seen = sqlx::query_scalar("SELECT max(last_seen_at) FROM session_activity")
            .fetch_one(&one.pool)
            .await
            .expect("activity");
        if seen.is_some_and(|s| s >= written) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        seen.is_some_and(|s| s >= written),
        "written behind: {seen:?}"
    );
    // 58 minutes after login but 29 after the use on `two`: `one` still accepts it.
    one.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(one.api_as(&token).me().await.status(), StatusCode::OK);
    // Left alone past the idle timeout: refused by both.
    one.clock.advance(chrono::Duration::minutes(31));
    for app in [&one, &two] {
        assert_problem(
            app.api_as(&token).me().await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
}

/// A token's requests are not events: only its first use is recorded in the account's stream.
#[tokio::test]
async fn token_requests_append_one_event_for_the_first_use_and_none_after() {
    let app = spawn_app().await;
    let session = app.signed_up("quiet.token@example.com").await;
    let created: Value = app
        .post(
            "/v1/me/tokens",
            json!({ "name": "ci", "password": PASSWORD, "scopes": ["read"] }),
            Some(&session),
        )
        .await
        .json()
        .await
        .expect("json");
    let token = created["token"].as_str().expect("token");
    let count = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE event_type = 'account.api_token.first_used'",
        )
        .fetch_one(&app.pool)
        .await
        .expect("count")
    };
    for _ in 0..20 {
        assert_eq!(app.api_as(token).me().await.status(), StatusCode::OK);
    }
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(count().await, 1, "the first use, once");
    for _ in 0..20 {
        assert_eq!(app.api_as(token).me().await.status(), StatusCode::OK);
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(after, all, "twenty more requests, no event");
    let metrics = app.get("/metrics", None).await.text().await.expect("text");
    let hits = metrics
        .lines()
        .find_map(|l| l.strip_prefix("warden_credential_cache_hits_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("hits counted");
    assert!(
        hits >= 30,
        "most of those checks were answered from memory: {hits}"
    );
}

async fn attempt_from(
    app: &crate::helpers::TestApp,
    forwarded_for: Option<&str>,
    n: usize,
) -> reqwest::Response {
    let mut request = app.client.post(app.url("/v1/sessions")).json(&json!({
        "email": format!("stuffed{n}@example.com"),
        "password": "a guessed password from a leak",
    }));
    if let Some(client) = forwarded_for {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.expect("answered")
}

/// Credential stuffing: one client trying many accounts meets a limit of its own, whatever
/// the accounts' lock-outs say; another client is not affected, and `X-Forwarded-For` is only
/// believed from a trusted proxy.
#[tokio::test]
async fn one_client_trying_many_accounts_is_throttled_and_others_are_not() {
    let app = crate::helpers::spawn_with_args(&[
        "--client-attempts-per-minute",
        "5",
        "--trusted-proxy",
        "127.0.0.1",
    ])
    .await;
    // Behind the trusted proxy, each client is the address it forwards. One sprays 200
    // accounts with wrong passwords: 5 are tried, the rest are throttled before any lookup.
    let mut answers = Vec::new();
    for n in 0..200 {
        answers.push(attempt_from(&app, Some("203.0.113.7"), n).await.status());
    }
    assert_eq!(count(&answers, StatusCode::UNAUTHORIZED), 5);
    assert_eq!(count(&answers, StatusCode::TOO_MANY_REQUESTS), 195);
    let throttled = attempt_from(&app, Some("203.0.113.7"), 200).await;
    assert!(throttled.headers().get("retry-after").is_some());
    assert_eq!(
        throttled
            .headers()
            .get("ratelimit-remaining")
            .and_then(|v| v.to_str().ok()),
        Some("0")
    );
    assert_problem(
        throttled,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
    let access = app
        .client
        .post(app.url("/v1/access-requests"))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({ "email": "mass@example.com", "reason": "let me in" }))
        .send()
        .await
        .expect("answered");
    assert_problem(access, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // Registration and reset requests draw on the same attempts.
    let register = app
        .client
        .post(app.url("/v1/accounts"))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({ "email": "mass@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    assert_problem(register, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    let other = attempt_from(&app, Some("198.51.100.9"), 6).await;
    assert_problem(other, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    // Without a trusted proxy the header is the client's own claim: ignored.
    let direct = crate::helpers::spawn_with_args(&["--client-attempts-per-minute", "5"]).await;
    for n in 0..5 {
        let spoofed = format!("192.0.2.{n}");
        let response = attempt_from(&direct, Some(&spoofed), n).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let spoofed = attempt_from(&direct, Some("192.0.2.99"), 5).await;
    assert_problem(spoofed, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

/// Holds every process's lease row, so the follower stops at its next renewal while its lease
/// is still trusted for up to 8 s; answers once it is waiting.
async fn stall_the_follower(
    app: &crate::helpers::TestApp,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut holding = app.pool.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM warden_processes FOR UPDATE")
        .execute(&mut *holding)
        .await
        .expect("lock the leases");
    for _ in 0..200 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND query LIKE 'UPDATE warden_processes%'",
        )
        .fetch_one(&app.pool)
        .await
        .expect("activity");
        if waiting > 0 {
            return holding;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the follower never waited for its lease");
}

async fn totp_pending(app: &crate::helpers::TestApp, session: &str) -> Value {
    let me: Value = app.api_as(session).me().await.json().await.expect("json");
    me["mfa"]["totp_pending"].clone()
}

#[tokio::test]
async fn a_change_is_in_the_committing_process_cache_when_its_call_returns_whatever_the_follower_does(
) {
    let app = spawn_app().await;
    // An attempt counts only when it answered while the stalled follower's lease was still
    // trusted (a stale entry would then have been served); a slow machine may need another.
    for attempt in 0..3 {
        let session = app
            .signed_up(&format!("own.writes{attempt}@example.com"))
            .await;
        assert_eq!(totp_pending(&app, &session).await, json!(false));
        let holding = stall_the_follower(&app).await;
        // Cached now, while the follower cannot drop anything.
        assert_eq!(totp_pending(&app, &session).await, json!(false));
        let started = app.post("/v1/me/mfa/totp", json!({}), Some(&session)).await;
        assert_eq!(started.status(), StatusCode::CREATED);
        assert_eq!(
            totp_pending(&app, &session).await,
            json!(true),
            "the process that committed the enrolment answers with it at once"
        );
        let trusted = app.state.app.credentials.cache().stats().trusted;
        holding.rollback().await.expect("release the leases");
        if trusted {
            return;
        }
        // The follower renews again once released; the next attempt starts from a trusted lease.
        for _ in 0..200 {
            if app.state.app.credentials.cache().stats().trusted {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    panic!("no attempt answered while the cache was trusted");
}
