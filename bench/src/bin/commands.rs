//! P3: commands per second through the event store, many distinct accounts, the projectors
//! running as in the server; against `pgbench` doing single-row durable INSERTs into a table
//! shaped like `events` on the same PostgreSQL with the same number of clients.
//! P6 (live): under that load, the lag from a command's commit to its delivery on
//! `GET /v1/events/stream`.
//!
//! `cargo run --release -p warden-bench --bin commands -- [clients] [seconds]` (needs pgbench)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::ConnectOptions;
use warden::adapters::store::EventStore;
use warden_aggregates::account::{Account, AccountCommand, SessionCommand, SessionEndReason};
use warden_bench::{
    account_with_history, admin_session, fresh_pool, log_head, log_in, ms, open_stream, percentile,
    serve_warden, services,
};

const ACCOUNTS_PER_CLIENT: usize = 25;

async fn pgbench(url: &str, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let script = std::env::temp_dir().join("warden-pgbench-insert.sql");
    std::fs::write(
        &script,
        "INSERT INTO bench_events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata) VALUES ('account', gen_random_uuid()::text, 1, \
         'account.session.ended', '1.0', \
         '{\"SessionEnded\":{\"session_id\":\"01a2017d-6046-7170-824c-365fa3b7cb8e\",\"reason\":\"logged_out\",\"at\":\"2026-11-22T04:00:00Z\"}}', \
         '{\"request_id\":\"bench\",\"actor\":\"01a2017d-6046-7170-824c-365fa3b7cb8e\"}');\n",
    )?;
    let output = tokio::process::Command::new("pgbench")
        .args(["-n", "-j", "2"])
        .arg(format!("-c{clients}"))
        .arg(format!("-T{seconds}"))
        .arg("-f")
        .arg(&script)
        .arg(url)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "pgbench said: {text} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let clients = args.first().copied().unwrap_or(8);
    let seconds = args.get(1).copied().unwrap_or(10) as u64;
    let pool = fresh_pool().await?;
    let url = pool.connect_options().to_url_lossy().to_string();
    // sqlx adds parameters of its own that libpq does not know.
    let url = url.split('?').next().unwrap_or(&url).to_string();
    sqlx::query("CREATE TABLE bench_events (LIKE events INCLUDING ALL)")
        .execute(&pool)
        .await?;
    let baseline = pgbench(&url, clients, seconds).await?;
    println!("baseline  pgbench {clients} clients, single-row INSERT into an events-shaped table: {baseline:.0} tx/s");

    let store = EventStore::new(pool.clone());
    let services = Arc::new(services());
    let mut accounts = Vec::new();
    for _ in 0..clients * ACCOUNTS_PER_CLIENT {
        accounts.push(account_with_history(&store, &services, 1).await?);
    }

    let alone = load(&store, &services, &accounts, seconds, Arc::default()).await?;
    println!(
        "P3 commands through the event store, {clients} clients, no projectors: {alone:.0}/s = {:.2} of pgbench",
        alone / baseline
    );

    // Warden in-process on the same database: projectors running, the stream served.
    let (base, state) = serve_warden(&url).await?;
    let admin = admin_session(&base, &state).await?;
    let client = reqwest::Client::new();

    // The live stream, from the head on: each event's arrival time by position.
    let head = log_head(&state)
        .await?
        .map(|c| c.to_string())
        .unwrap_or_else(|| "0.0".into());
    // The load starts with every reader at the head, as in a deployment that is running: the
    // first phase's events are not a backlog this one is timed working through (the rebuild
    // bench times that).
    let caught_up = at_head(&state).await?;
    println!("every view and reactor at the head of the first phase's log in {caught_up:.0} ms");
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let listening = {
        let arrived = arrived.clone();
        let response = open_stream(&client, &base, &admin, &head).await?;
        tokio::spawn(async move {
            let mut response = response;
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                let now = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                        if let Ok(event) = serde_json::from_str::<Value>(data) {
                            if let Some(id) = event["position"].as_str() {
                                arrived
                                    .lock()
                                    .map(|mut a| a.insert(id.to_string(), now))
                                    .ok();
                            }
                        }
                    }
                }
            }
        })
    };

    let committed: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let rate = load(&store, &services, &accounts, seconds, committed.clone()).await?;
    println!(
        "P3 commands through the event store, {clients} clients, projectors running: {rate:.0}/s = {:.2} of pgbench",
        rate / baseline
    );

    // Let the stream deliver what was committed, then compare.
    tokio::time::sleep(Duration::from_secs(3)).await;
    listening.abort();
    let arrived = arrived.lock().map(|a| a.clone()).unwrap_or_default();
    let committed = committed.lock().map(|c| c.clone()).unwrap_or_default();
    let mut lags: Vec<Duration> = committed
        .iter()
        .filter_map(|(id, at)| {
            arrived
                .get(id)
                .map(|got| got.saturating_duration_since(*at))
        })
        .collect();
    anyhow::ensure!(!lags.is_empty(), "no event arrived on the stream");
    let missing = committed.len() - lags.len();
    println!(
        "P6 SSE lag commit -> delivery under that load: p50 {:.1} ms, p99 {:.1} ms over {} events ({missing} not delivered within 3 s after the load)",
        ms(percentile(&mut lags, 0.50)),
        ms(percentile(&mut lags, 0.99)),
        lags.len()
    );
    Ok(())
}

/// Waits until every projector and reactor of the server has read past the head of the log;
/// answers how long that took, in milliseconds.
async fn at_head(state: &warden::startup::AppState) -> anyhow::Result<f64> {
    let started = Instant::now();
    let head = log_head(state)
        .await?
        .ok_or_else(|| anyhow::anyhow!("an empty log"))?;
    while !state
        .projections
        .statuses()
        .iter()
        .all(|s| s.progress >= head)
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the readers did not reach the head in two minutes"
        );
        state.projections.wake();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(ms(started.elapsed()))
}

/// `clients` tasks (one per chunk of accounts) alternately start and end sessions on their
/// accounts for `seconds`; answers commands per second and records each commit's position.
async fn load(
    store: &EventStore,
    services: &Arc<warden_aggregates::account::AccountServices>,
    accounts: &[String],
    seconds: u64,
    committed: Arc<Mutex<Vec<(String, Instant)>>>,
) -> anyhow::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = accounts
        .chunks(ACCOUNTS_PER_CLIENT)
        .map(|mine| {
            let mine = mine.to_vec();
            let (store, services, stop, done, committed) = (
                store.clone(),
                services.clone(),
                stop.clone(),
                done.clone(),
                committed.clone(),
            );
            tokio::spawn(async move {
                let metadata = HashMap::new();
                let mut turn = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = &mine[turn % mine.len()];
                    // Alternately start and end a session: one event each.
                    let result = if (turn / mine.len()) % 2 == 0 {
                        store
                            .execute::<Account>(id, || log_in("right"), &services, &metadata)
                            .await
                    } else {
                        store
                            .execute::<Account>(
                                id,
                                || {
                                    AccountCommand::from(SessionCommand::EndAll {
                                        reason: SessionEndReason::RevokedAll,
                                    })
                                },
                                &services,
                                &metadata,
                            )
                            .await
                    };
                    let at = Instant::now();
                    let outcome = result?;
                    if let Some(position) = outcome.position {
                        committed
                            .lock()
                            .map(|mut c| c.push((position.to_string(), at)))
                            .ok();
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    turn += 1;
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await??;
    }
    let took = started.elapsed();
    let rate = done.load(Ordering::Relaxed) as f64 / took.as_secs_f64();
    Ok(rate)
}
