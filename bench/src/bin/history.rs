//! P4: command latency for an account with a long history against one with a short history.
//! The command is a login followed by a logout (three events), executed through the snapshot
//! path. For context, the cost of loading the long history without snapshots is measured too.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use warden::adapters::store::EventStore;
use warden_aggregates::account::{Account, AccountCommand, SessionCommand, SessionEndReason};
use warden_bench::{account_with_history, fresh_pool, log_in, ms, percentile, services};

const ROUNDS: usize = 300;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let long: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let pool = fresh_pool().await?;
    let store = EventStore::new(pool.clone());
    let services = services();
    let short_id = account_with_history(&store, &services, 10).await?;
    let long_id = account_with_history(&store, &services, long).await?;
    let metadata = HashMap::new();

    let mut short = Vec::with_capacity(ROUNDS);
    let mut long_samples = Vec::with_capacity(ROUNDS);
    // Interleaved so both sides see the same machine noise.
    for _ in 0..ROUNDS {
        for (id, samples) in [(&short_id, &mut short), (&long_id, &mut long_samples)] {
            let started = Instant::now();
            store
                .execute::<Account>(id, || log_in("right"), &services, &metadata)
                .await?;
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
                .await?;
            samples.push(started.elapsed() / 2);
        }
    }
    let mut replay = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        store.replay::<Account>(&long_id).await?;
        replay.push(started.elapsed());
    }
    let (s50, l50) = (
        percentile(&mut short, 0.5),
        percentile(&mut long_samples, 0.5),
    );
    let (s99, l99) = (
        percentile(&mut short, 0.99),
        percentile(&mut long_samples, 0.99),
    );
    let replay50: Duration = percentile(&mut replay, 0.5);
    println!("history growth: {ROUNDS} rounds, command = login or logout");
    println!(
        "  10 prior events:      p50 {:.2} ms  p99 {:.2} ms",
        ms(s50),
        ms(s99)
    );
    println!(
        "  {long} prior events: p50 {:.2} ms  p99 {:.2} ms",
        ms(l50),
        ms(l99)
    );
    println!(
        "  ratio long/short:     p50 {:.2}x  p99 {:.2}x",
        l50.as_secs_f64() / s50.as_secs_f64(),
        l99.as_secs_f64() / s99.as_secs_f64()
    );
    println!(
        "  for context, loading the long history without a snapshot: p50 {:.2} ms ({:.1}x a command)",
        ms(replay50),
        replay50.as_secs_f64() / s50.as_secs_f64()
    );
    Ok(())
}
