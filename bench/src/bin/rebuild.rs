//! P5 and P6 (paging), and the audit chain's verification rate, on a log of generated events.
//!
//! The log: one account's real history (registration, logins, logouts, a failed login — made by
//! the real aggregate through the event store) copied under fresh ids until it holds N events
//! (default 1,000,000), loaded with COPY. Then, each against reading the same rows with
//! `COPY (SELECT ... ORDER BY transaction_id, global_position) TO STDOUT` in the same run:
//!
//! * rebuild: every projector from nothing to the head, each on its own reader and all at once,
//!   then again on one shared reader as in the server;
//! * verify: the audit chain recomputed from the events and checked against its checkpoints;
//! * paging: `GET /v1/events?limit=1000` from the start to the end over HTTP.
//!
//! `cargo run --release -p warden-bench --bin rebuild -- [N] [--skip-paging]`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use sqlx::postgres::PgPoolCopyExt;
use sqlx::ConnectOptions;
use sqlx::PgPool;
use uuid::Uuid;
use warden::adapters::store::EventStore;
use warden_aggregates::account::{Account, AccountCommand, SessionCommand, SessionEndReason};
use warden_bench::{
    account_with_history, admin_session, fresh_pool, log_in, serve_warden, services,
};
use warden_projections::replay::replay_reporting;
use warden_projections::{
    audit_chain, catch_up, catch_up_together_fully, Progress, Projector, SigningKey,
};

const TEMPLATE_LOGINS: usize = 4;
const CHUNK: usize = 100_000;

#[derive(sqlx::FromRow)]
struct TemplateRow {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
}

fn uuids_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 36 <= bytes.len() {
        let candidate = &text[i..i + 36];
        if Uuid::parse_str(candidate).is_ok() && candidate.as_bytes()[8] == b'-' {
            if !found.iter().any(|f: &String| f == candidate) {
                found.push(candidate.to_string());
            }
            i += 36;
        } else {
            i += 1;
        }
    }
    found
}

/// COPY text format: backslashes doubled; compact JSON has no tabs or newlines.
fn copy_field(text: &str) -> String {
    text.replace('\\', "\\\\")
}

async fn template(pool: &PgPool) -> anyhow::Result<Vec<TemplateRow>> {
    let store = EventStore::new(pool.clone());
    let services = services();
    let id = account_with_history(&store, &services, 1 + 2 * TEMPLATE_LOGINS).await?;
    let metadata: HashMap<String, String> = HashMap::from([
        ("request_id".to_string(), Uuid::new_v4().to_string()),
        ("actor".to_string(), id.clone()),
        ("auth_method".to_string(), "session".to_string()),
    ]);
    store
        .execute::<Account>(&id, || log_in("wrong"), &services, &metadata)
        .await?;
    store
        .execute::<Account>(
            &id,
            || {
                AccountCommand::from(SessionCommand::EndAll {
                    reason: SessionEndReason::RevokedAll,
                })
            },
            &services,
            &metadata,
        )
        .await?;
    let rows: Vec<TemplateRow> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                metadata FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(pool)
    .await?;
    sqlx::query("DELETE FROM events WHERE aggregate_id = $1")
        .bind(&id)
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM aggregate_snapshots")
        .execute(pool)
        .await?;
    Ok(rows)
}

async fn generate(pool: &PgPool, total: usize) -> anyhow::Result<()> {
    let rows = template(pool).await?;
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                r.aggregate_type,
                r.aggregate_id,
                r.sequence,
                r.event_type,
                r.event_version,
                copy_field(&r.payload.to_string()),
                copy_field(&r.metadata.to_string())
            )
        })
        .collect();
    let template_text: String = lines.concat();
    let ids = uuids_in(&template_text);
    let copies = total.div_ceil(rows.len());
    let mut written = 0;
    while written < copies {
        let this_chunk = (CHUNK / rows.len()).min(copies - written);
        let mut buffer = String::with_capacity(this_chunk * template_text.len());
        for _ in 0..this_chunk {
            let mut copy = template_text.clone();
            for id in &ids {
                copy = copy.replace(id.as_str(), &Uuid::now_v7().to_string());
            }
            buffer.push_str(&copy);
        }
        let mut copy = pool
            .copy_in_raw(
                "COPY events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                              payload, metadata) FROM STDIN",
            )
            .await?;
        copy.send(buffer.into_bytes()).await?;
        copy.finish().await?;
        written += this_chunk;
    }
    sqlx::query("ANALYZE events").execute(pool).await?;
    Ok(())
}

/// Reads every event in commit order with COPY: how fast PostgreSQL hands the rows out.
async fn copy_rate(pool: &PgPool) -> anyhow::Result<(u64, Duration)> {
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut stream = conn
        .copy_out_raw(
            "COPY (SELECT transaction_id, global_position, aggregate_type, aggregate_id, sequence,
                          event_type, event_version, payload, metadata
                   FROM events ORDER BY transaction_id, global_position) TO STDOUT",
        )
        .await?;
    let mut lines = 0_u64;
    while let Some(chunk) = stream.next().await {
        lines += chunk?.iter().filter(|b| **b == b'\n').count() as u64;
    }
    Ok((lines, started.elapsed()))
}

fn rate(events: u64, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64()
}

#[derive(serde::Deserialize)]
struct Skimmed {
    events: Vec<serde::de::IgnoredAny>,
    next: String,
}

async fn page_over_http(url: &str, events: u64) -> anyhow::Result<Duration> {
    let (base, state) = serve_warden(url).await?;
    let token = admin_session(&base, &state).await?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut after = "0.0".to_string();
    let mut read = 0_u64;
    loop {
        let body = client
            .get(format!("{base}/v1/events?after={after}&limit=1000"))
            .bearer_auth(&token)
            .send()
            .await?
            .bytes()
            .await?;
        // The reader skims each page (its events counted, `next` kept) instead of building a
        // tree of it: what is timed is Warden serving the stream, not this client's decoding.
        let page: Skimmed = serde_json::from_slice(&body)?;
        let n = page.events.len() as u64;
        if n == 0 {
            break;
        }
        read += n;
        after = page.next;
    }
    let took = started.elapsed();
    anyhow::ensure!(read >= events, "paged {read} of {events} events");
    Ok(took)
}

/// When each stage of a replay finished, and when each first reached the furthest it got.
#[derive(Default)]
struct Finishes {
    finished: std::sync::Mutex<Vec<Instant>>,
    furthest: std::sync::Mutex<HashMap<String, (u64, Instant)>>,
}

impl Progress for Finishes {
    fn update(&self, stage: &str, done: u64, _: u64) {
        if let Ok(mut furthest) = self.furthest.lock() {
            let entry = furthest
                .entry(stage.to_string())
                .or_insert((0, Instant::now()));
            if done > entry.0 {
                *entry = (done, Instant::now());
            }
        }
    }
    fn finish(&self, _: &str) {
        if let Ok(mut finished) = self.finished.lock() {
            finished.push(Instant::now());
        }
    }
}

/// `warden replay` as an auditor runs it: every view rebuilt from the log into scratch tables
/// (timed to the last view's end), then compared with the live views row for row.
async fn replay_timed(
    pool: &PgPool,
    url: &str,
    projectors: &[std::sync::Arc<dyn Projector>],
    events: u64,
    baseline: f64,
) -> anyhow::Result<()> {
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    let finishes = Finishes::default();
    let started = Instant::now();
    let report = replay_reporting(pool, options, projectors, &finishes).await?;
    let whole = started.elapsed();
    anyhow::ensure!(report.identical, "the replay differed: {report:?}");
    if let Ok(furthest) = finishes.furthest.lock() {
        let mut stages: Vec<_> = furthest.iter().collect();
        stages.sort_by_key(|(_, (_, at))| *at);
        for (stage, (_, at)) in stages {
            println!(
                "  {stage:<32} at its end after {:.1} s",
                (*at - started).as_secs_f64()
            );
        }
    }
    let rebuilt = finishes
        .finished
        .lock()
        .ok()
        .and_then(|f| f.iter().max().copied())
        .map_or(whole, |last| last - started);
    let rebuild_rate = rate(events, rebuilt);
    println!(
        "P5 warden replay: every view rebuilt in {:.1} s = {rebuild_rate:.0} events/s = {:.3}x COPY; with the comparison {:.1} s",
        rebuilt.as_secs_f64(),
        rebuild_rate / baseline,
        whole.as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let total: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let paging = !args.iter().any(|a| a == "--skip-paging");
    let pool = fresh_pool().await?;
    let url = pool.connect_options().to_url_lossy().to_string();

    let started = Instant::now();
    generate(&pool, total).await?;
    // The log stands for one written before this process started: its mail went out as it was
    // written. Without this, the server that pages it below would have its mail outbox work
    // through the whole log meanwhile (notices of every sign-in), and paging would be timed
    // against it.
    sqlx::query(
        "INSERT INTO projector_checkpoints (name, transaction_id, global_position)
         SELECT 'mail_outbox', transaction_id, global_position FROM events
         ORDER BY transaction_id DESC, global_position DESC LIMIT 1
         ON CONFLICT (name) DO UPDATE
         SET transaction_id = EXCLUDED.transaction_id, global_position = EXCLUDED.global_position",
    )
    .execute(&pool)
    .await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    println!(
        "generated {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let (copied, copy_took) = copy_rate(&pool).await?;
    let baseline = rate(copied, copy_took);
    println!("baseline  COPY ... TO STDOUT in commit order: {copied} rows in {:.2} s = {baseline:.0} rows/s", copy_took.as_secs_f64());

    // What one statement costs a projector: a round trip inside a transaction.
    let mut tx = pool.begin().await?;
    let started = Instant::now();
    for _ in 0..2000 {
        sqlx::query("SELECT 1").execute(&mut *tx).await?;
    }
    let round_trip = started.elapsed() / 2000;
    tx.commit().await?;
    println!(
        "one statement round trip in a transaction: {:.1} us",
        round_trip.as_secs_f64() * 1e6
    );

    // Every projector from nothing, all at once, as the server runs them.
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let projectors = warden_projections::all(Some(key.clone()));
    let started = Instant::now();
    let tasks: Vec<_> = projectors
        .iter()
        .cloned()
        .map(|projector| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let began = Instant::now();
                catch_up(&pool, projector.as_ref()).await?;
                Ok::<_, anyhow::Error>((projector.name(), began.elapsed()))
            })
        })
        .collect();
    let mut slowest = ("", Duration::ZERO);
    for task in tasks {
        let (name, took) = task.await??;
        let consumed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = ANY($1) OR $2")
                .bind(
                    projectors
                        .iter()
                        .find(|p| p.name() == name)
                        .map(|p| {
                            p.event_types()
                                .iter()
                                .map(|t| t.to_string())
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default(),
                )
                .bind(
                    projectors
                        .iter()
                        .any(|p| p.name() == name && p.reads_every_event()),
                )
                .fetch_one(&pool)
                .await?;
        let per_event = took.as_secs_f64() * 1e6 / consumed.max(1) as f64;
        if consumed == 0 {
            println!("  {name:<22} no events of its types");
            continue;
        }
        println!(
            "  {name:<22} {consumed:>8} events in {:>6.1} s = {per_event:>6.1} us each ({:.1} round trips)",
            took.as_secs_f64(),
            per_event / (round_trip.as_secs_f64() * 1e6)
        );
        if took > slowest.1 {
            slowest = (name, took);
        }
    }
    let rebuild = started.elapsed();
    let rebuild_rate = rate(events as u64, rebuild);
    println!(
        "P5 rebuild of every view: {events} events in {:.1} s = {rebuild_rate:.0} events/s = {:.3}x COPY (slowest: {})",
        rebuild.as_secs_f64(),
        rebuild_rate / baseline,
        slowest.0
    );

    // The same rebuild through one shared reader, as the server now runs its views
    // (docs/adr/0023): each batch read and parsed once for every view.
    let tables: Vec<&str> = projectors
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    sqlx::query(&format!("TRUNCATE {}", tables.join(", ")))
        .execute(&pool)
        .await?;
    let views: Vec<&dyn Projector> = projectors.iter().map(|p| p.as_ref()).collect();
    let names: Vec<&str> = views.iter().map(|v| v.name()).collect();
    sqlx::query("DELETE FROM projector_checkpoints WHERE name = ANY($1)")
        .bind(&names)
        .execute(&pool)
        .await?;
    let started = Instant::now();
    catch_up_together_fully(&pool, &views).await?;
    let shared = started.elapsed();
    let shared_rate = rate(events as u64, shared);
    println!(
        "P5 rebuild of every view on one shared reader: {events} events in {:.1} s = {shared_rate:.0} events/s = {:.3}x COPY = {:.2}x the views each on its own reader",
        shared.as_secs_f64(),
        shared_rate / baseline,
        shared_rate / rebuild_rate
    );

    replay_timed(&pool, &url, &projectors, events as u64, baseline).await?;

    audit_chain::sign_head(&pool, &key).await?;
    // Three times: straight after the rebuild wrote the chain, again, and after a VACUUM. The
    // first full read of freshly written rows sets their hint bits (it writes every page), so
    // the first figure can be far below the others; the vacuumed one is the steady state.
    for (pass, vacuum) in [
        ("first read", false),
        ("second read", false),
        ("after VACUUM", true),
    ] {
        if vacuum {
            sqlx::query("VACUUM (ANALYZE) audit_chain_v1")
                .execute(&pool)
                .await?;
            sqlx::query("VACUUM (ANALYZE) events")
                .execute(&pool)
                .await?;
        }
        let started = Instant::now();
        let verification = audit_chain::verify(&pool, key.verifying_key()).await?;
        let verify_took = started.elapsed();
        anyhow::ensure!(
            verification.ok,
            "the chain did not verify: {verification:?}"
        );
        let verify_rate = rate(verification.events_checked as u64, verify_took);
        println!(
            "chain verification ({pass}): {} events in {:.1} s = {verify_rate:.0} events/s = {:.3}x COPY",
            verification.events_checked,
            verify_took.as_secs_f64(),
            verify_rate / baseline
        );
    }

    if paging {
        let took = page_over_http(&url, events as u64).await?;
        let paging_rate = rate(events as u64, took);
        println!(
            "P6 paging GET /v1/events?limit=1000: {events} events in {:.1} s = {paging_rate:.0} events/s = {:.3}x COPY",
            took.as_secs_f64(),
            paging_rate / baseline
        );
    }
    Ok(())
}
