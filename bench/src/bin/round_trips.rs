//! Statements sent to PostgreSQL per command and per commit's trip through the views, counted
//! from sqlx's own statement log (one event per statement, each a round trip). sqlx sends a
//! transaction's `BEGIN` and `COMMIT` outside that log, so two round trips are added per view
//! transaction: one per view per pass on their own readers, one per pass on the shared one (two
//! commits fit one pass). A command on an account this process has not seen, one it has (its aggregate cached),
//! and the views applying one commit, each on its own reader (as before docs/adr/0023) and on
//! the shared reader.
//!
//! `cargo run --release -p warden-bench --bin round_trips -- [commands]` (default 200)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;
use warden::adapters::store::EventStore;
use warden_aggregates::account::Account;
use warden_bench::{account_with_history, fresh_pool, log_in, services};
use warden_projections::{catch_up, catch_up_once, catch_up_together_fully, Projector};

static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// Counts the statements sqlx logs (target `sqlx::query`, one event per statement executed).
struct Counter;

impl<S: tracing::Subscriber> Layer<S> for Counter {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            STATEMENTS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn counted() -> u64 {
    STATEMENTS.load(Ordering::Relaxed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("sqlx::query", tracing::Level::TRACE);
    let subscriber = tracing_subscriber::registry().with(Counter.with_filter(filter));
    tracing::subscriber::set_global_default(subscriber)?;

    let pool = fresh_pool().await?;
    let services = services();
    let views = warden_projections::all(None);
    let views: Vec<&dyn Projector> = views.iter().map(|p| p.as_ref()).collect();
    let metadata = HashMap::new();

    // Accounts made by another process: this one has none of them cached.
    let elsewhere = EventStore::new(pool.clone());
    let mut accounts = Vec::new();
    for _ in 0..n {
        accounts.push(account_with_history(&elsewhere, &services, 4).await?);
    }
    for view in &views {
        catch_up(&pool, *view).await?;
    }

    let store = EventStore::new(pool.clone());
    let mut cold = 0;
    let mut warm = 0;
    let mut alone = 0;
    let mut shared = 0;
    for (i, id) in accounts.iter().enumerate() {
        let command = || log_in("right");
        let before = counted();
        store
            .execute::<Account>(id, command, &services, &metadata)
            .await?;
        cold += counted() - before;
        let before = counted();
        store
            .execute::<Account>(id, command, &services, &metadata)
            .await?;
        warm += counted() - before;
        // The two commits through the views: every other time each view on its own reader,
        // every other time all on the shared one.
        let before = counted();
        if i % 2 == 0 {
            for view in &views {
                catch_up_once(&pool, *view).await?;
            }
            alone += counted() - before;
        } else {
            catch_up_together_fully(&pool, &views).await?;
            shared += counted() - before;
        }
    }
    let per = |total: u64, count: u64| total as f64 / count.max(1) as f64;
    let half = n / 2;
    println!("statements (round trips) per command, over {n} commands each:");
    println!("  account not cached in this process: {:.2}", per(cold, n));
    println!("  account cached (the usual case):    {:.2}", per(warm, n));
    println!(
        "statements for {} views to apply two commits (a login each):",
        views.len()
    );
    let transactions = views.len() as f64;
    println!(
        "  each view on its own reader: {:.2} statements + {} BEGIN/COMMIT = {:.2}",
        per(alone, n - half),
        2.0 * transactions,
        per(alone, n - half) + 2.0 * transactions
    );
    println!(
        "  one shared reader:           {:.2} statements + 2 BEGIN/COMMIT = {:.2}",
        per(shared, half),
        per(shared, half) + 2.0
    );
    Ok(())
}
