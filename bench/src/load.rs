//! Load from outside the process under test: `wrk` at saturation, and paced (open-loop)
//! requests for latency at a chosen rate.

use std::process::Stdio;
use std::time::{Duration, Instant};

pub struct WrkResult {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
}

fn to_ms(text: &str) -> f64 {
    let number = |suffix: &str| {
        text.trim_end_matches(suffix)
            .parse::<f64>()
            .unwrap_or(f64::NAN)
    };
    if text.ends_with("us") {
        number("us") / 1000.0
    } else if text.ends_with("ms") {
        number("ms")
    } else if text.ends_with('s') {
        number("s") * 1000.0
    } else {
        f64::NAN
    }
}

pub async fn wrk(
    url: &str,
    connections: usize,
    seconds: u64,
    script: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<WrkResult> {
    let mut command = tokio::process::Command::new("wrk");
    command
        .arg(format!("-t{}", connections.clamp(1, 2)))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("--timeout")
        .arg("30s");
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    if let Some(token) = token {
        command
            .arg("-H")
            .arg(format!("Authorization: Bearer {token}"));
    }
    let output = command.arg(url).stderr(Stdio::inherit()).output().await?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
            .unwrap_or_default()
    };
    let non_2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let result = WrkResult {
        requests_per_second: field("Requests/sec:").parse().unwrap_or(f64::NAN),
        p50_ms: to_ms(&field("50%")),
        p99_ms: to_ms(&field("99%")),
        non_2xx,
    };
    anyhow::ensure!(result.requests_per_second.is_finite(), "wrk said: {text}");
    Ok(result)
}

pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Requests at a fixed rate (open loop) for `seconds`; latencies of each answered request (a
/// request that fails is reported on stderr and left out).
pub async fn paced(
    url: String,
    token: String,
    per_second: f64,
    seconds: u64,
) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let interval = Duration::from_secs_f64(1.0 / per_second);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    while Instant::now() < deadline {
        ticker.tick().await;
        let client = client.clone();
        let url = url.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let response = client.get(url).bearer_auth(token).send().await?;
            anyhow::ensure!(response.status().is_success(), "{}", response.status());
            response.bytes().await?;
            Ok(started.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for task in tasks {
        match task.await? {
            Ok(latency) => latencies.push(latency),
            Err(_) => failed += 1,
        }
    }
    if failed > 0 {
        eprintln!(
            "paced: {failed} of {} requests failed",
            failed + latencies.len()
        );
    }
    anyhow::ensure!(!latencies.is_empty(), "no paced request was answered");
    Ok(latencies)
}
