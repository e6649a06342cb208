//! Projector lag under a burst: writers commit logins as fast as they can while the projectors
//! run as in the server; each writer measures the time from its commit until every view its
//! events affect reflects it (what a request waits for). The baseline, measured in the same run, is a bare single-row INSERT + COMMIT round trip on
//! the same database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use warden::adapters::store::EventStore;
use warden_aggregates::account::Account;
use warden_bench::{account_with_history, fresh_pool, log_in, ms, percentile, services};
use warden_projections::Projections;

const WRITERS: usize = 8;
const COMMANDS_PER_WRITER: usize = 250;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pool = fresh_pool().await?;
    sqlx::query("CREATE TABLE bench_rows (id bigserial PRIMARY KEY, payload jsonb NOT NULL)")
        .execute(&pool)
        .await?;
    let mut baseline = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        sqlx::query("INSERT INTO bench_rows (payload) VALUES ('{}')")
            .execute(&pool)
            .await?;
        baseline.push(started.elapsed());
    }

    let store = EventStore::new(pool.clone());
    let services = Arc::new(services());
    let projections = Projections::new(pool.clone(), warden_projections::all(None));
    let tasks = projections.start();
    let mut accounts = Vec::new();
    for _ in 0..WRITERS {
        accounts.push(account_with_history(&store, &services, 1).await?);
    }

    let started = Instant::now();
    let writers = accounts.into_iter().map(|id| {
        let store = store.clone();
        let services = services.clone();
        let projections = projections.clone();
        tokio::spawn(async move {
            let metadata = HashMap::new();
            let mut lags = Vec::with_capacity(COMMANDS_PER_WRITER);
            for _ in 0..COMMANDS_PER_WRITER {
                let committed = store
                    .execute::<Account>(&id, || log_in("right"), &services, &metadata)
                    .await?;
                let committed_at = Instant::now();
                let position = committed
                    .position
                    .ok_or_else(|| anyhow::anyhow!("no events"))?;
                projections.wake();
                // As the server does: wait for the views this command's events affect.
                let types: Vec<String> = committed
                    .events
                    .iter()
                    .map(cqrs_es::DomainEvent::event_type)
                    .collect();
                let settled = projections
                    .wait_for_views_of(position, Some(&types), Duration::from_secs(10))
                    .await;
                if !settled {
                    anyhow::bail!("views did not catch up within 10 s");
                }
                lags.push(committed_at.elapsed());
            }
            anyhow::Ok(lags)
        })
    });
    let mut lags = Vec::new();
    for writer in writers.collect::<Vec<_>>() {
        lags.extend(writer.await??);
    }
    let elapsed = started.elapsed();
    for task in tasks {
        task.abort();
    }
    let commands = lags.len();
    let (b50, b99) = (
        percentile(&mut baseline, 0.5),
        percentile(&mut baseline, 0.99),
    );
    let (l50, l99) = (percentile(&mut lags, 0.5), percentile(&mut lags, 0.99));
    println!(
        "projector lag: {WRITERS} writers, {commands} logins in {:.2} s ({:.0} commands/s)",
        elapsed.as_secs_f64(),
        commands as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  baseline INSERT+COMMIT: p50 {:.2} ms  p99 {:.2} ms",
        ms(b50),
        ms(b99)
    );
    println!(
        "  commit -> all views:    p50 {:.2} ms  p99 {:.2} ms",
        ms(l50),
        ms(l99)
    );
    println!(
        "  ratio lag/baseline:     p50 {:.1}x  p99 {:.1}x",
        l50.as_secs_f64() / b50.as_secs_f64(),
        l99.as_secs_f64() / b99.as_secs_f64()
    );
    Ok(())
}
