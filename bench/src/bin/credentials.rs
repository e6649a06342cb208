//! Authentication from memory (docs/adr/0015): `GET /v1/me` with a session and
//! `POST /v1/introspect` against `GET /healthz` of the same server and a bare actix handler,
//! under the same `wrk` settings; p99 at half the saturating load; two processes on one
//! database together; and how long "log out of all devices" takes with 0, 1 and 2 other
//! processes, one of them frozen with SIGSTOP for 3 s during the call.
//!
//! `cargo build --release --bins -p warden -p warden-bench && target/release/credentials [seconds]`
//! (needs `wrk`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::Command;
use warden_bench::fresh_pool;
use warden_bench::load::{wrk, WrkResult};
use warden_bench::processes::{Deployment, Process};

const PASSWORD: &str = "a long benchmark passphrase";
const CONNECTIONS: usize = 32;

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    Ok(response.json().await.unwrap_or(Value::Null))
}

async fn session(base: &str, email: &str) -> anyhow::Result<String> {
    let body = json!({ "email": email, "password": PASSWORD });
    let session = post(base, "/v1/sessions", None, body).await?;
    session["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no token: {session}"))
}

fn ratio(line: &str, measured: &WrkResult, baseline: &WrkResult) {
    println!(
        "{line}: {:.0} req/s vs {:.0} req/s = {:.2}; p99 {:.2} ms vs {:.2} ms (non-2xx {})",
        measured.requests_per_second,
        baseline.requests_per_second,
        measured.requests_per_second / baseline.requests_per_second,
        measured.p99_ms,
        baseline.p99_ms,
        measured.non_2xx
    );
}

/// Registers `email` through `base` and logs it in `n` times: the sessions' tokens.
async fn registered_with_sessions(
    base: &str,
    email: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let body = json!({ "email": email, "password": PASSWORD });
    post(base, "/v1/accounts", None, body).await?;
    let mut tokens = Vec::new();
    for _ in 0..n {
        tokens.push(session(base, email).await?);
    }
    Ok(tokens)
}

/// Registers `email` with `sessions` sessions through `base` and logs out of all devices: how
/// long the last step took.
async fn log_out_of_all_devices(base: &str, email: &str, sessions: usize) -> anyhow::Result<f64> {
    let tokens = registered_with_sessions(base, email, sessions).await?;
    let started = Instant::now();
    post(
        base,
        "/v1/me/sessions/revoke-all",
        Some(&tokens[0]),
        Value::Null,
    )
    .await?;
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    // First, while this process has allocated little else.
    memory_of_cached_sessions(100_000);
    let pool = fresh_pool().await?;
    let mut deployment =
        Deployment::new(sqlx::ConnectOptions::to_url_lossy(&*pool.connect_options()).to_string());
    let a = deployment.start().await?;
    let token = registered_with_sessions(&a.base, "reader@example.com", 1)
        .await?
        .remove(0);
    deployment.admin("gateway@example.com", PASSWORD).await?;
    let admin = session(&a.base, "gateway@example.com").await?;
    let created = post(
        &a.base,
        "/v1/me/tokens",
        Some(&admin),
        json!({ "name": "gateway", "password": PASSWORD, "scopes": ["introspect"] }),
    )
    .await?;
    let gateway = created["token"].as_str().unwrap_or_default().to_owned();

    // Baselines, same wrk settings.
    let bare_exe = std::env::current_exe()?.with_file_name("bare_actix");
    let mut bare = Command::new(&bare_exe)
        .arg("127.0.0.1:18080")
        .kill_on_drop(true)
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bare_me = wrk(
        "http://127.0.0.1:18080/v1/me",
        CONNECTIONS,
        seconds,
        None,
        Some(&token),
    )
    .await?;
    bare.kill().await?;
    let healthz = wrk(
        &format!("{}/healthz", a.base),
        CONNECTIONS,
        seconds,
        None,
        None,
    )
    .await?;
    let me_url = format!("{}/v1/me", a.base);
    let me = wrk(&me_url, CONNECTIONS, seconds, None, Some(&token)).await?;
    ratio("GET /v1/me vs bare actix", &me, &bare_me);
    ratio("GET /v1/me vs GET /healthz", &me, &healthz);

    let script = std::env::temp_dir().join("warden-introspect.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.body = [[{}]]\n",
            json!({ "token": token })
        ),
    )?;
    let introspect = wrk(
        &format!("{}/v1/introspect", a.base),
        CONNECTIONS,
        seconds,
        script.to_str(),
        Some(&gateway),
    )
    .await?;
    ratio("POST /v1/introspect vs bare actix", &introspect, &bare_me);
    ratio("POST /v1/introspect vs GET /healthz", &introspect, &healthz);

    // Latency below saturation: the fewest connections whose closed-loop throughput is at most
    // half the saturating one (an open-loop client in this process cannot pace 20,000+ requests
    // a second on these 2 cores without becoming the bottleneck itself).
    let half = me.requests_per_second / 2.0;
    for connections in [4, 2, 1] {
        let below = wrk(&me_url, connections, seconds, None, Some(&token)).await?;
        let at_most_half = below.requests_per_second <= half;
        println!(
                "GET /v1/me below saturation: {connections} connections, {:.0} req/s ({:.2} of saturation): p50 {:.2} ms, p99 {:.2} ms",
                below.requests_per_second,
                below.requests_per_second / me.requests_per_second,
                below.p50_ms,
                below.p99_ms
        );
        if at_most_half {
            break;
        }
    }

    // Two processes on one database, loaded at once.
    let b = deployment.start().await?;
    let (me_a, me_b) = (format!("{}/v1/me", a.base), format!("{}/v1/me", b.base));
    let (on_a, on_b) = tokio::join!(
        wrk(&me_a, CONNECTIONS / 2, seconds, None, Some(&token)),
        wrk(&me_b, CONNECTIONS / 2, seconds, None, Some(&token)),
    );
    let (on_a, on_b) = (on_a?, on_b?);
    println!(
        "two processes together: {:.0} + {:.0} = {:.0} req/s = {:.2} of one process alone (both share these 2 cores)",
        on_a.requests_per_second,
        on_b.requests_per_second,
        on_a.requests_per_second + on_b.requests_per_second,
        (on_a.requests_per_second + on_b.requests_per_second) / me.requests_per_second
    );

    revocation_times(&mut deployment, a, b).await
}

/// RSS this process gains by caching `n` live sessions as the server does (each with an opened
/// profile and two workspace memberships).
fn memory_of_cached_sessions(n: usize) {
    use std::sync::Arc;
    use warden::app::accounts::Profile;
    use warden::app::credentials::cache::{
        CacheLimits, CachedCredential, CredentialCache, Facts, SessionFacts,
    };
    use warden::app::credentials::Membership;
    use warden::app::Personal;
    use warden_aggregates::shared::{SessionId, WorkspaceId};
    use warden_aggregates::workspace::Role;

    let before = warden_bench::load::rss_kib();
    let cache = CredentialCache::new(
        CacheLimits {
            max_entries: n as u64 * 2,
            max_bytes: 4 << 30,
        },
        true,
    );
    let now = chrono::Utc::now();
    for i in 0..n {
        let account_id = uuid::Uuid::now_v7();
        let workspace = uuid::Uuid::now_v7();
        let profile = Profile {
            id: account_id,
            email: Personal::Open(format!("person.number{i}@customer-example.com")),
            display_name: Some(Personal::Open(format!("Person Number {i}"))),
            registered_at: Some(now),
            mfa_methods: vec![],
            totp_pending: false,
            recovery_codes_remaining: 0,
            is_admin: false,
            is_auditor: false,
            mfa_required_by: vec![WorkspaceId(workspace)],
        };
        let entry = CachedCredential {
            account_id,
            enrollment_only: false,
            facts: Facts::Session(SessionFacts {
                session_id: SessionId(uuid::Uuid::now_v7()),
                started_at: now,
                expires_at: now,
                idle_timeout_secs: 1800,
                mfa_passed: true,
                pin_unlocked_until: None,
                last_seen: now.timestamp().into(),
                last_written: now.timestamp().into(),
            }),
            memberships: vec![
                Membership::new(WorkspaceId(workspace), Role::Agent, Some(now)),
                Membership::new(WorkspaceId(uuid::Uuid::now_v7()), Role::Supervisor, None),
            ],
            profile: Arc::new(profile),
        };
        let key = format!("{:064x}", rand::random::<u128>());
        cache.insert(key, Arc::new(entry), cache.epoch());
    }
    let stats = cache.stats();
    let after = warden_bench::load::rss_kib();
    println!(
        "memory: {} sessions cached, RSS +{} MiB ({:.2} KiB each)",
        stats.entries,
        (after - before) / 1024,
        (after - before) as f64 / stats.entries.max(1) as f64
    );
}

/// "Log out of all devices" (5 sessions) with 0, 1 and 2 other processes, then with one of two
/// others frozen for 3 s during the call.
async fn revocation_times(
    deployment: &mut Deployment,
    a: Process,
    b: Process,
) -> anyhow::Result<()> {
    // Stopped as an operator stops it: it leaves, and nobody waits for it.
    b.stop().await?;
    let mut others = Vec::new();
    for count in 0..=2 {
        while others.len() < count {
            others.push(deployment.start().await?);
        }
        let mut times = Vec::new();
        for round in 0..5 {
            let email = format!("revoke.{count}.{round}@example.com");
            times.push(log_out_of_all_devices(&a.base, &email, 5).await?);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "log out of all devices with {count} other processes: median {:.1} ms (of 5: {:.1}–{:.1} ms)",
            times[2], times[0], times[4]
        );
    }
    let tokens = registered_with_sessions(&a.base, "revoke.frozen@example.com", 5).await?;
    let frozen = &others[0];
    frozen.signal("STOP")?;
    let started = Instant::now();
    let call = post(
        &a.base,
        "/v1/me/sessions/revoke-all",
        Some(&tokens[0]),
        Value::Null,
    );
    let thaw = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        frozen.signal("CONT")
    };
    let (answered, thawed) = tokio::join!(
        async {
            let result = call.await;
            (result, started.elapsed())
        },
        thaw
    );
    thawed?;
    answered.0?;
    println!(
        "log out of all devices with 2 other processes, one frozen for 3 s during the call: {:.0} ms",
        answered.1.as_secs_f64() * 1000.0
    );
    drop(a);
    Ok(())
}
