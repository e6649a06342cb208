//! What a person sees while a long writing transaction in *another database* on the same
//! PostgreSQL holds back the horizon every view and the stream read below (docs/operations.md,
//! "A long transaction elsewhere").
//!
//! One client goes round: log in, `GET /v1/me`, `GET /v1/me/sessions` (does the new session show?),
//! log out, `GET /v1/me` with the ended token (must be refused); a stream reader tails
//! `GET /v1/events/stream`. Three phases: before, during the transaction, after it commits.
//!
//! `cargo run --release -p warden-bench --bin horizon -- [seconds held]` (default 60)

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{ConnectOptions, Connection, PgConnection};
use uuid::Uuid;
use warden_bench::{
    admin_session, fresh_pool, log_head, ms, open_stream, percentile, serve_warden,
};

const PASSWORD: &str = "a long benchmark passphrase";

/// What one phase saw.
#[derive(Default)]
struct Phase {
    rounds: u64,
    statuses: BTreeMap<String, u64>,
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    /// The new session missing from the caller's own session list right after the login.
    stale_lists: u64,
    /// An ended session's token accepted after the logout returned.
    accepted_after_revocation: u64,
    server_errors: u64,
}

impl Phase {
    fn record(&mut self, op: &'static str, status: u16, took: Duration) {
        *self.statuses.entry(format!("{op} {status}")).or_default() += 1;
        self.latencies.entry(op).or_default().push(took);
        if status >= 500 {
            self.server_errors += 1;
        }
    }

    fn print(&mut self, name: &str) {
        println!(
            "{name}: {} rounds, {} answers >= 500, {} stale session lists, {} ended tokens accepted",
            self.rounds, self.server_errors, self.stale_lists, self.accepted_after_revocation
        );
        for (op, samples) in &mut self.latencies {
            let p50 = ms(percentile(samples, 0.50));
            let p99 = ms(percentile(samples, 0.99));
            println!("  {op:<22} p50 {p50:>8.1} ms  p99 {p99:>8.1} ms");
        }
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        println!("  statuses: {}", statuses.join(", "));
    }
}

async fn timed(request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value, Duration)> {
    let started = Instant::now();
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body, started.elapsed()))
}

/// One round of a person's calls, recorded in `phase`.
async fn round(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    phase: &mut Phase,
) -> anyhow::Result<()> {
    let login = client
        .post(format!("{base}/v1/sessions"))
        .json(&json!({ "email": email, "password": PASSWORD }));
    let (status, session, took) = timed(login).await?;
    phase.record("log in", status, took);
    let (Some(token), Some(id)) = (session["token"].as_str(), session["session"]["id"].as_str())
    else {
        return Ok(());
    };
    let me = client.get(format!("{base}/v1/me")).bearer_auth(token);
    let (status, _, took) = timed(me).await?;
    phase.record("GET /v1/me", status, took);
    let list = client
        .get(format!("{base}/v1/me/sessions"))
        .bearer_auth(token);
    let (status, sessions, took) = timed(list).await?;
    phase.record("GET /v1/me/sessions", status, took);
    let listed = sessions["sessions"]
        .as_array()
        .is_some_and(|all| all.iter().any(|s| s["id"] == id));
    if !listed {
        phase.stale_lists += 1;
    }
    let logout = client
        .delete(format!("{base}/v1/sessions/current"))
        .bearer_auth(token);
    let (status, _, took) = timed(logout).await?;
    phase.record("log out", status, took);
    if status == 204 {
        let after = client.get(format!("{base}/v1/me")).bearer_auth(token);
        let (status, _, took) = timed(after).await?;
        phase.record("ended token", status, took);
        if status < 400 {
            phase.accepted_after_revocation += 1;
        }
    }
    phase.rounds += 1;
    Ok(())
}

async fn phase_for(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    length: Duration,
) -> anyhow::Result<Phase> {
    let mut phase = Phase::default();
    let started = Instant::now();
    while started.elapsed() < length {
        round(client, base, email, &mut phase).await?;
    }
    Ok(phase)
}

/// Counts the events the stream delivers.
fn tail_stream(response: reqwest::Response, delivered: Arc<AtomicU64>) {
    tokio::spawn(async move {
        let mut response = response;
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                if frame.lines().any(|l| l.starts_with("data: ")) {
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let held: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    let pool = fresh_pool().await?;
    let url = pool.connect_options().to_url_lossy().to_string();
    let url = url.split('?').next().unwrap_or(&url).to_string();
    let (base, state) = serve_warden(&url).await?;
    let admin = admin_session(&base, &state).await?;
    let client = reqwest::Client::new();
    let email = format!("horizon-{}@example.com", Uuid::new_v4().simple());
    let registered = client
        .post(format!("{base}/v1/accounts"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await?;
    anyhow::ensure!(
        registered.status().is_success(),
        "registration: {}",
        registered.status()
    );

    let stream = open_stream(&client, &base, &admin, "0.0").await?;
    let delivered = Arc::new(AtomicU64::new(0));
    tail_stream(stream, delivered.clone());

    phase_for(&client, &base, &email, Duration::from_secs(10))
        .await?
        .print("before");

    // A writing transaction in another database of the same server.
    let server = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    let other = format!("warden_bench_other_{}", Uuid::new_v4().simple());
    let mut admin_conn = PgConnection::connect(&format!("{server}/postgres")).await?;
    sqlx::query(&format!("CREATE DATABASE {other}"))
        .execute(&mut admin_conn)
        .await?;
    let mut elsewhere = PgConnection::connect(&format!("{server}/{other}")).await?;
    let mut holding = elsewhere.begin().await?;
    sqlx::query("CREATE TABLE held (n int)")
        .execute(&mut *holding)
        .await?;
    sqlx::query("INSERT INTO held VALUES (1)")
        .execute(&mut *holding)
        .await?;
    let streamed_before = delivered.load(Ordering::Relaxed);
    let mut during = phase_for(&client, &base, &email, Duration::from_secs(held)).await?;
    let streamed_during = delivered.load(Ordering::Relaxed) - streamed_before;
    holding.commit().await?;
    let ended = Instant::now();
    during.print(&format!(
        "during a {held} s writing transaction in another database"
    ));
    println!("  stream: {streamed_during} events delivered during the transaction");
    println!(
        "  answers given before their views (the horizon held): {}",
        state.projections.held_waits()
    );

    let head = log_head(&state)
        .await?
        .ok_or_else(|| anyhow::anyhow!("an empty log"))?;
    let caught_up = state
        .projections
        .wait_for(head, Duration::from_secs(60))
        .await;
    println!(
        "after the commit: every view at the head in {:.0} ms ({caught_up})",
        ms(ended.elapsed())
    );
    phase_for(&client, &base, &email, Duration::from_secs(10))
        .await?
        .print("after");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    println!(
        "stream: {} of {events} events delivered in all",
        delivered.load(Ordering::Relaxed)
    );
    drop(elsewhere);
    sqlx::query(&format!("DROP DATABASE IF EXISTS {other} WITH (FORCE)"))
        .execute(&mut admin_conn)
        .await?;
    Ok(())
}
