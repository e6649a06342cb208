//! Whether answer times tell which addresses have accounts: a password-reset request and a
//! wrong-password login, each for known and unknown addresses, interleaved one after the other
//! from one client so both see the same machine. The figure is the gap of the medians, as a
//! share of the unknown address's median (target ≤ 10%).
//!
//! `cargo run --release -p warden-bench --bin enumeration -- 200`

use std::time::{Duration, Instant};

use serde_json::json;
use warden_bench::fresh_pool;

const PASSWORD: &str = "a long benchmark passphrase";
const WRONG: &str = "not the benchmark passphrase";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tries: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let pool = fresh_pool().await?;
    let url = sqlx::ConnectOptions::to_url_lossy(&*pool.connect_options()).to_string();
    let (base, _) = warden_bench::serve_warden(&url).await?;
    let client = reqwest::Client::new();

    // One account per try, so that no lock-out changes the path of a later try.
    let mut known = Vec::with_capacity(tries);
    for i in 0..tries {
        let email = format!("known{i}@example.com");
        let created = client
            .post(format!("{base}/v1/accounts"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await?;
        anyhow::ensure!(created.status().is_success(), "registration {i}");
        known.push(email);
    }
    let unknown: Vec<String> = (0..tries)
        .map(|i| format!("nobody{i}@example.com"))
        .collect();

    // Each kind in a phase of its own: a reset request's work goes on after its answer, and the
    // logins are not to be measured against it.
    let mut reset = (Vec::new(), Vec::new());
    let url = format!("{base}/v1/password-resets");
    for i in 0..tries {
        for is_known in order(i) {
            let email = if is_known { &known[i] } else { &unknown[i] };
            let took = timed(&client, &url, json!({ "email": email }), 202).await?;
            if is_known {
                reset.0.push(took)
            } else {
                reset.1.push(took)
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut login = (Vec::new(), Vec::new());
    let url = format!("{base}/v1/sessions");
    for i in 0..tries {
        for is_known in order(i) {
            let email = if is_known { &known[i] } else { &unknown[i] };
            let body = json!({ "email": email, "password": WRONG });
            let took = timed(&client, &url, body, 401).await?;
            if is_known {
                login.0.push(took)
            } else {
                login.1.push(took)
            }
        }
    }
    println!("{tries} tries each, interleaved, one client, release build");
    report("password reset request", &mut reset.0, &mut reset.1);
    report("wrong-password login", &mut login.0, &mut login.1);
    Ok(())
}

/// Alternates which goes first, so neither always follows the other's work.
fn order(i: usize) -> [bool; 2] {
    if i.is_multiple_of(2) {
        [true, false]
    } else {
        [false, true]
    }
}

async fn timed(
    client: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
    expected: u16,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = client.post(url).json(&body).send().await?;
    let took = started.elapsed();
    anyhow::ensure!(
        response.status().as_u16() == expected,
        "{url}: {} instead of {expected}",
        response.status()
    );
    Ok(took)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(what: &str, known: &mut [Duration], unknown: &mut [Duration]) {
    known.sort();
    unknown.sort();
    let (k50, u50) = (percentile(known, 0.5), percentile(unknown, 0.5));
    let gap = (k50.as_secs_f64() - u50.as_secs_f64()).abs() / u50.as_secs_f64();
    println!(
        "{what}: known p50 {:.2} ms p90 {:.2} ms, unknown p50 {:.2} ms p90 {:.2} ms, gap at p50 {:.1}% ({})",
        k50.as_secs_f64() * 1e3,
        percentile(known, 0.9).as_secs_f64() * 1e3,
        u50.as_secs_f64() * 1e3,
        percentile(unknown, 0.9).as_secs_f64() * 1e3,
        gap * 100.0,
        if gap <= 0.10 { "within 10%" } else { "over 10%" }
    );
}
