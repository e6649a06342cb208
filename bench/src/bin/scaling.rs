//! More than one process on one database: `GET /v1/me`, commands (`PUT /v1/me/notices`, one
//! event each, waited for by the views) and logins, first against one `warden serve` process,
//! then spread over three on the same database; with the CPU each Warden process and the
//! PostgreSQL server spent per request (docs/scaling.md).
//!
//! `cargo build --release --bins -p warden -p warden-bench && target/release/scaling [seconds]`
//! (needs `wrk`; the machine should be otherwise quiet: PostgreSQL's CPU is read from /proc for
//! every `postgres` process).

use std::path::PathBuf;

use serde_json::{json, Value};
use warden_bench::fresh_pool;
use warden_bench::load::wrk;
use warden_bench::processes::{Deployment, Process};

const PASSWORD: &str = "a long benchmark passphrase";
const ACCOUNTS: usize = 96;
const CONNECTIONS: usize = 32;

/// CPU time (user + system) of the processes whose command name is `name`, or of `pids`.
fn cpu_seconds(filter: impl Fn(u32, &str) -> bool) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold spaces; the fields follow it.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let name = head.split_once(" (").map_or("", |(_, n)| n);
        if !filter(pid, name) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0);
        let stime: f64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
        total += (utime + stime) / ticks;
    }
    total
}

/// A wrk script sending `PUT /v1/me/notices` for `tokens` in turn, each thread its own half,
/// each request turning the notice the other way (so that each is a command with an event).
fn notices_script(tokens: &[String]) -> anyhow::Result<PathBuf> {
    let list: Vec<String> = tokens.iter().map(|t| format!("\"{t}\"")).collect();
    let script = format!(
        r#"local tokens = {{ {} }}
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init(args)
  mine = {{}}
  for i, t in ipairs(tokens) do if (i % 2) == id then table.insert(mine, t) end end
  flips = {{}}
  n = 0
end
request = function()
  n = n + 1
  local i = (n % #mine) + 1
  flips[i] = not flips[i]
  local body = '{{"new_sign_in":' .. tostring(flips[i] == true) .. '}}'
  return wrk.format("PUT", "/v1/me/notices",
    {{ ["Authorization"] = "Bearer " .. mine[i], ["Content-Type"] = "application/json" }}, body)
end
"#,
        list.join(", ")
    );
    let path = std::env::temp_dir().join(format!("warden-notices-{}.lua", uuid::Uuid::new_v4()));
    std::fs::write(&path, script)?;
    Ok(path)
}

/// A wrk script logging in as `emails` in turn.
fn logins_script(emails: &[String]) -> anyhow::Result<PathBuf> {
    let list: Vec<String> = emails.iter().map(|e| format!("\"{e}\"")).collect();
    let script = format!(
        r#"local emails = {{ {} }}
local n = 0
request = function()
  n = n + 1
  local body = '{{"email":"' .. emails[(n % #emails) + 1] .. '","password":"{PASSWORD}"}}'
  return wrk.format("POST", "/v1/sessions", {{ ["Content-Type"] = "application/json" }}, body)
end
"#,
        list.join(", ")
    );
    let path = std::env::temp_dir().join(format!("warden-logins-{}.lua", uuid::Uuid::new_v4()));
    std::fs::write(&path, script)?;
    Ok(path)
}

/// One wrk script per process (none: a plain request).
type Scripts = Vec<Option<PathBuf>>;

/// What one load did, all processes together.
struct Measured {
    per_second: f64,
    non_2xx: u64,
    warden_cpu_ms: f64,
    postgres_cpu_ms: f64,
    /// Transactions PostgreSQL committed in the database per request (pg_stat_database).
    transactions: f64,
}

async fn committed(pool: &sqlx::PgPool) -> anyhow::Result<f64> {
    // The statistics of this transaction's snapshot are cleared first: the count is current.
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await?;
    let n: i64 = sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(n as f64)
}

/// Runs one wrk per process at once (the connections split between them); `script_for` gives
/// each process's script, `token` the bearer for a plain GET.
async fn measure(
    pool: &sqlx::PgPool,
    processes: &[Process],
    path: &str,
    seconds: u64,
    scripts: &[Option<PathBuf>],
    token: Option<&str>,
) -> anyhow::Result<Measured> {
    let pids: Vec<u32> = processes.iter().filter_map(Process::pid).collect();
    let warden_cpu = || cpu_seconds(|pid, _| pids.contains(&pid));
    let postgres_cpu = || cpu_seconds(|_, name| name.starts_with("postgres"));
    let (warden_before, postgres_before) = (warden_cpu(), postgres_cpu());
    let transactions_before = committed(pool).await?;
    let each = (CONNECTIONS / processes.len()).max(2);
    let runs = processes.iter().zip(scripts).map(|(process, script)| {
        let url = format!("{}{path}", process.base);
        let script = script.as_ref().and_then(|s| s.to_str()).map(str::to_owned);
        async move { wrk(&url, each, seconds, script.as_deref(), token).await }
    });
    let results = futures_util::future::try_join_all(runs).await?;
    let (warden_after, postgres_after) = (warden_cpu(), postgres_cpu());
    let transactions_after = committed(pool).await?;
    let per_second: f64 = results.iter().map(|r| r.requests_per_second).sum();
    let requests = per_second * seconds as f64;
    Ok(Measured {
        per_second,
        non_2xx: results.iter().map(|r| r.non_2xx).sum(),
        warden_cpu_ms: (warden_after - warden_before) * 1000.0 / requests,
        postgres_cpu_ms: (postgres_after - postgres_before) * 1000.0 / requests,
        transactions: (transactions_after - transactions_before) / requests,
    })
}

fn print(name: &str, one: &Measured, many: &Measured, n: usize) {
    println!(
        "{name:<22} 1 process {:>9.0}/s ({} non-2xx)   {n} processes {:>9.0}/s ({} non-2xx)   = {:.2}x",
        one.per_second,
        one.non_2xx,
        many.per_second,
        many.non_2xx,
        many.per_second / one.per_second
    );
    println!(
        "{:<22} per request: Warden CPU {:.3} -> {:.3} ms, PostgreSQL CPU {:.3} -> {:.3} ms, \
         transactions {:.1} -> {:.1}",
        "",
        one.warden_cpu_ms,
        many.warden_cpu_ms,
        one.postgres_cpu_ms,
        many.postgres_cpu_ms,
        one.transactions,
        many.transactions
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let n = 3;
    let pool = fresh_pool().await?;
    let url = sqlx::ConnectOptions::to_url_lossy(&*pool.connect_options()).to_string();
    let mut deployment = Deployment::new(url);
    let mut processes = vec![deployment.start().await?];
    let client = reqwest::Client::new();
    let base = processes[0].base.clone();
    let (mut emails, mut tokens) = (Vec::new(), Vec::new());
    for i in 0..ACCOUNTS {
        let email = format!("scale{i}@example.com");
        let body = json!({ "email": email, "password": PASSWORD });
        client
            .post(format!("{base}/v1/accounts"))
            .json(&body)
            .send()
            .await?;
        let session: Value = client
            .post(format!("{base}/v1/sessions"))
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let token = session["token"].as_str().unwrap_or_default().to_owned();
        anyhow::ensure!(!token.is_empty(), "no session: {session}");
        emails.push(email);
        tokens.push(token);
    }
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
    println!(
        "{ACCOUNTS} accounts, {CONNECTIONS} connections in all, {seconds} s each, {cores} cores"
    );

    // Each process gets its own share of the accounts, so no two processes write one account.
    let shares = |count: usize| -> anyhow::Result<(Scripts, Scripts)> {
        let size = ACCOUNTS / count;
        let mut notices = Vec::new();
        let mut logins = Vec::new();
        for k in 0..count {
            notices.push(Some(notices_script(&tokens[k * size..(k + 1) * size])?));
            logins.push(Some(logins_script(&emails[k * size..(k + 1) * size])?));
        }
        Ok((notices, logins))
    };
    let none = vec![None; n];
    let (notices, logins) = shares(1)?;
    let me_one = measure(
        &pool,
        &processes,
        "/v1/me",
        seconds,
        &none[..1],
        Some(&tokens[0]),
    )
    .await?;
    let commands_one =
        measure(&pool, &processes, "/v1/me/notices", seconds, &notices, None).await?;
    let logins_one = measure(&pool, &processes, "/v1/sessions", seconds, &logins, None).await?;

    for _ in 1..n {
        processes.push(deployment.start().await?);
    }
    let (notices, logins) = shares(n)?;
    let me_many = measure(
        &pool,
        &processes,
        "/v1/me",
        seconds,
        &none,
        Some(&tokens[0]),
    )
    .await?;
    let commands_many =
        measure(&pool, &processes, "/v1/me/notices", seconds, &notices, None).await?;
    let logins_many = measure(&pool, &processes, "/v1/sessions", seconds, &logins, None).await?;

    print("GET /v1/me", &me_one, &me_many, n);
    print("PUT /v1/me/notices", &commands_one, &commands_many, n);
    print("POST /v1/sessions", &logins_one, &logins_many, n);
    Ok(())
}
