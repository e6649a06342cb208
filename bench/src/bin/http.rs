//! P1 (password login at saturation against the argon2 bound, RSS during a 64-connection flood)
//! and P2 (`GET /v1/me` with a session token against a bare actix-web handler), with `wrk` as
//! the load generator for both sides, same threads, connections and duration.
//!
//! `cargo build --release -p warden-bench --bins && target/release/http [seconds]`
//! (needs `wrk`; `apt-get install wrk`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};
use warden::adapters::password::Argon2Passwords;
use warden_aggregates::account::PasswordVerifier;
use warden_bench::fresh_pool;
use warden_bench::load::{paced, rss_kib, wrk};

const PASSWORD: &str = "a long benchmark passphrase";
const LOGIN_CONNECTIONS: usize = 64;
const ME_CONNECTIONS: usize = 32;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = fresh_pool().await?;
    let url = sqlx::ConnectOptions::to_url_lossy(&*pool.connect_options()).to_string();

    // The argon2 bound, measured here: cores ÷ the time of one verify with Warden's parameters.
    let passwords = Argon2Passwords::new(cores).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let secret = SecretString::from(PASSWORD);
    let hash = passwords
        .hash(&secret)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let started = Instant::now();
    for _ in 0..20 {
        anyhow::ensure!(passwords.verify(&hash, &secret).await);
    }
    let one_verify = started.elapsed() / 20;
    let bound = cores as f64 / one_verify.as_secs_f64();

    let (base, _) = warden_bench::serve_warden(&url).await?;
    let client = reqwest::Client::new();

    // Accounts for the login flood: one per connection, so that logins do not queue on one
    // account's optimistic concurrency.
    let mut bodies = Vec::new();
    for i in 0..LOGIN_CONNECTIONS {
        let email = format!("login{i}@example.com");
        let created = client
            .post(format!("{base}/v1/accounts"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await?;
        anyhow::ensure!(
            created.status().is_success(),
            "register: {}",
            created.status()
        );
        bodies.push(json!({ "email": email, "password": PASSWORD }).to_string());
    }
    let script = std::env::temp_dir().join("warden-login.lua");
    let lua_bodies: Vec<String> = bodies.iter().map(|b| format!("[[{b}]]")).collect();
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
             local bodies = {{{}}}\nlocal i = 0\n\
             request = function()\n  i = i + 1\n  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])\nend\n",
            lua_bodies.join(", ")
        ),
    )?;

    // P1: logins at saturation, RSS sampled meanwhile.
    let peak = Arc::new(AtomicU64::new(rss_kib()));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let rss_before = rss_kib();
    let logins = wrk(
        &format!("{base}/v1/sessions"),
        LOGIN_CONNECTIONS,
        seconds,
        script.to_str(),
        None,
    )
    .await?;
    sampler.abort();
    println!(
        "argon2 verify {:.1} ms on {cores} cores -> bound {bound:.1} logins/s",
        one_verify.as_secs_f64() * 1000.0
    );
    println!(
        "P1 logins: {:.1}/s = {:.2} of the bound; p50 {:.0} ms, p99 {:.0} ms; non-2xx {}; RSS {} MiB before, peak {} MiB during {LOGIN_CONNECTIONS} connections",
        logins.requests_per_second,
        logins.requests_per_second / bound,
        logins.p50_ms,
        logins.p99_ms,
        logins.non_2xx,
        rss_before / 1024,
        peak.load(Ordering::Relaxed) / 1024
    );

    // P2: GET /v1/me with a session, against the bare handler, same wrk settings.
    let session: Value = client
        .post(format!("{base}/v1/sessions"))
        .json(&json!({ "email": "login0@example.com", "password": PASSWORD }))
        .send()
        .await?
        .json()
        .await?;
    let token = session["token"].as_str().unwrap_or_default().to_string();
    let bare_exe = std::env::current_exe()?.with_file_name("bare_actix");
    let mut bare = tokio::process::Command::new(&bare_exe)
        .arg("127.0.0.1:18080")
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("{}: {e} (build with --bins)", bare_exe.display()))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = wrk(
        "http://127.0.0.1:18080/v1/me",
        ME_CONNECTIONS,
        seconds,
        None,
        Some(&token),
    )
    .await?;
    bare.kill().await?;
    let me = wrk(
        &format!("{base}/v1/me"),
        ME_CONNECTIONS,
        seconds,
        None,
        Some(&token),
    )
    .await?;
    anyhow::ensure!(
        me.non_2xx == 0,
        "{} non-2xx answers from /v1/me",
        me.non_2xx
    );
    println!(
        "P2 GET /v1/me: {:.0} req/s vs bare actix {:.0} req/s = {:.2}; p99 {:.2} ms vs {:.2} ms at saturation ({ME_CONNECTIONS} connections)",
        me.requests_per_second,
        baseline.requests_per_second,
        me.requests_per_second / baseline.requests_per_second,
        me.p99_ms,
        baseline.p99_ms
    );
    let half = me.requests_per_second / 2.0;
    let mut latencies = paced(format!("{base}/v1/me"), token, half, seconds.min(10)).await?;
    let p50 = warden_bench::percentile(&mut latencies, 0.50);
    let p99 = warden_bench::percentile(&mut latencies, 0.99);
    println!(
        "P2 at half the saturating load ({half:.0} req/s, open loop): p50 {:.2} ms, p99 {:.2} ms over {} requests",
        warden_bench::ms(p50),
        warden_bench::ms(p99),
        latencies.len()
    );
    Ok(())
}
