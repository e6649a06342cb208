//! Sessions on real `warden` processes and what each process answers for them, for the tests of
//! the revocation barrier (`tests/api/revocation.rs`, `tests/horizon`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::PASSWORD;
use crate::processes::{call, Server};

/// Waits until the process answers from its cache (its lease is renewed).
pub(crate) async fn trusted(server: &Server) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(response) = client.get(server.url("/metrics")).send().await {
            let text = response.text().await.unwrap_or_default();
            if text.contains("warden_credential_cache_trusted 1") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the credential cache never became trusted");
}

/// Registers an account through `server` and logs in `n` times: the sessions' tokens.
pub(crate) async fn sessions(server: &Server, email: &str, n: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let body = json!({ "email": email, "password": PASSWORD });
    let (status, _) = call(
        &client,
        Method::POST,
        server.url("/v1/accounts"),
        None,
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut tokens = Vec::new();
    for _ in 0..n {
        let (status, session) = call(
            &client,
            Method::POST,
            server.url("/v1/sessions"),
            None,
            body.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        tokens.push(session["token"].as_str().expect("token").to_owned());
    }
    tokens
}

pub(crate) async fn me(server: &Server, token: &str) -> StatusCode {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    match client
        .get(server.url("/v1/me"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(response) => response.status(),
        Err(_) => StatusCode::GATEWAY_TIMEOUT,
    }
}

/// Every session answers 200 on every server: each is now in each server's cache.
pub(crate) async fn warm(servers: &[&Server], tokens: &[String]) {
    for server in servers {
        trusted(server).await;
        for token in tokens {
            // The first answers may come before the views have the new session (a login
            // waits for them at most 5 s, and three processes' projectors share two cores).
            let mut status = StatusCode::UNAUTHORIZED;
            for _ in 0..500 {
                status = me(server, token).await;
                if status == StatusCode::OK {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(status, StatusCode::OK, "a live session is accepted");
        }
        answered_from_memory(server, tokens).await;
    }
}

/// The cache's hit and miss counters of `server`.
async fn cache_counters(server: &Server) -> Option<(u64, u64)> {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let counter = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((
        counter("warden_credential_cache_hits_total ")?,
        counter("warden_credential_cache_misses_total ")?,
    ))
}

/// Waits until two rounds of every token, more than one follower poll apart, are all answered
/// from memory: the follower has read the sessions' own events (which drop the account's
/// entries) and the entries built after them are cached. Without this, a process may answer a
/// revoked session from the database instead of its cache, and a test of the cache proves
/// nothing.
async fn answered_from_memory(server: &Server, tokens: &[String]) {
    let mut clean_rounds = 0;
    for _ in 0..100 {
        let before = cache_counters(server).await;
        let found = statuses(server, tokens).await;
        let after = cache_counters(server).await;
        let all_hits = matches!((before, after), (Some((h0, m0)), Some((h1, m1)))
            if m1 == m0 && h1 >= h0 + tokens.len() as u64);
        if all_hits && found.iter().all(|s| *s == StatusCode::OK) {
            clean_rounds += 1;
            if clean_rounds == 2 {
                return;
            }
        } else {
            clean_rounds = 0;
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    panic!("the sessions were never all answered from the cache");
}

pub(crate) async fn log_out_of_all_devices(server: &Server, token: &str) -> (StatusCode, Value) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    call(
        &client,
        Method::POST,
        server.url("/v1/me/sessions/revoke-all"),
        Some(token),
        Value::Null,
    )
    .await
}

pub(crate) async fn statuses(server: &Server, tokens: &[String]) -> Vec<StatusCode> {
    let mut found = Vec::new();
    for token in tokens {
        found.push(me(server, token).await);
    }
    found
}
