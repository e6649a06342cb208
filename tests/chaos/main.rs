//! The randomized fault run: three Warden processes on one PostgreSQL of the run's own, each
//! behind a proxy that can cut or slow its connections; clients through every kind of use; faults
//! drawn from a seed; then checks that the recorded history keeps Warden's promises.
//!
//! `cargo test --test chaos -- --seed 7 --seconds 1800` (defaults: seed 1, 120 s; also
//! `WARDEN_CHAOS_SEED`, `WARDEN_CHAOS_SECONDS`). `--break barrier` runs the processes without
//! the revocation barrier and `--break view` makes one view lose one event (debug builds only):
//! the run must then fail. Exits non-zero on any violation, printing the seed and the first
//! violating operations.

#![allow(dead_code)]

mod checks;
mod faults;
mod history;
#[path = "../support/processes.rs"]
mod processes;
#[path = "../support/proxy.rs"]
mod proxy;
mod workload;

use std::collections::HashSet;
use std::io::Write;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use sqlx::{Connection, Executor};

use crate::checks::Check;
use crate::faults::Deployment;
use crate::processes::{Cluster, Server};
use crate::proxy::Proxy;
use crate::workload::World;

const PROCESSES: usize = 3;
const ADMIN_EMAIL: &str = "chaos.admin@example.com";
const ADMIN_PASSWORD: &str = "the chaos run's admin passphrase";

struct Options {
    seed: u64,
    seconds: u64,
    people: usize,
    breakage: Option<String>,
}

impl Options {
    /// `None` when a test filter that does not name this run was given.
    fn parse() -> Option<Self> {
        let env = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let mut options = Self {
            seed: env("WARDEN_CHAOS_SEED", 1),
            seconds: env("WARDEN_CHAOS_SECONDS", 120),
            people: 8,
            breakage: None,
        };
        let mut filters = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_default();
            match arg.as_str() {
                "--seed" => options.seed = value().parse().unwrap_or(options.seed),
                "--seconds" => options.seconds = value().parse().unwrap_or(options.seconds),
                "--people" => options.people = value().parse().unwrap_or(options.people),
                "--break" => options.breakage = Some(value()),
                // What cargo's test runner may pass; this binary has one test.
                flag if flag.starts_with('-') => {}
                filter => filters.push(filter.to_owned()),
            }
        }
        let named = filters.is_empty() || filters.iter().any(|f| "chaos".contains(f.as_str()));
        named.then_some(options)
    }

    fn broken_env(&self) -> Vec<(String, String)> {
        match self.breakage.as_deref() {
            Some("barrier") => vec![("WARDEN_UNSAFE_NO_REVOCATION_BARRIER".into(), "1".into())],
            Some("view") => vec![(
                "WARDEN_UNSAFE_SKIP_EVENT".into(),
                "session_history_v1:40".into(),
            )],
            _ => Vec::new(),
        }
    }
}

fn main() -> ExitCode {
    let Some(options) = Options::parse() else {
        println!("test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out");
        return ExitCode::SUCCESS;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let passed = runtime.block_on(run(&options));
    if passed {
        println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
        ExitCode::SUCCESS
    } else {
        println!("test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out");
        ExitCode::FAILURE
    }
}

/// The cluster with the run's database and another one, three proxies and three processes.
async fn deploy(options: &Options, logs: &std::path::Path) -> Deployment {
    let cluster = Cluster::create()
        .await
        .expect("PostgreSQL binaries under /usr/lib/postgresql for a cluster of the run's own");
    let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres"))
        .await
        .expect("the cluster answers");
    for database in ["warden", "elsewhere"] {
        admin
            .execute(format!("CREATE DATABASE {database}").as_str())
            .await
            .expect("a database");
    }
    let mut elsewhere = sqlx::PgConnection::connect(&cluster.url("elsewhere"))
        .await
        .expect("elsewhere");
    elsewhere
        .execute("CREATE TABLE held (at timestamptz)")
        .await
        .expect("a table elsewhere");
    let mut proxies = Vec::new();
    for _ in 0..PROCESSES {
        proxies.push(Proxy::start(cluster.port).await.expect("a proxy"));
    }
    let through = |proxy: &Proxy| format!("postgres://postgres@127.0.0.1:{}/warden", proxy.port);
    let mut first = Server::new(through(&proxies[0]));
    first.env = options.broken_env();
    first.log_level = "warn";
    let mut servers = vec![first];
    for proxy in &proxies[1..] {
        let sibling = servers[0].sibling(through(proxy));
        servers.push(sibling);
    }
    for (i, server) in servers.iter_mut().enumerate() {
        server.log = Some(logs.join(format!("process-{i}.log")));
        server.start().await;
    }
    Deployment {
        cluster,
        servers,
        proxies,
    }
}

/// A platform admin's session, for the stream readers.
async fn admin_token(deployment: &Deployment) -> String {
    let server = &deployment.servers[0];
    let mut create = std::process::Command::new(processes::warden_binary())
        .args([
            "admin",
            "create",
            "--email",
            ADMIN_EMAIL,
            "--password-stdin",
        ])
        .env("DATABASE_URL", deployment.cluster.url("warden"))
        .env("WARDEN_MASTER_KEY", &server.master_key)
        .env("WARDEN_SIGNING_KEY", &server.signing_key)
        .env("WARDEN_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("warden admin create");
    create
        .stdin
        .take()
        .expect("stdin")
        .write_all(ADMIN_PASSWORD.as_bytes())
        .expect("password written");
    assert!(create.wait().expect("waited").success(), "admin created");
    let session: serde_json::Value = reqwest::Client::new()
        .post(server.url("/v1/sessions"))
        .json(&serde_json::json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    session["token"].as_str().expect("admin session").to_owned()
}

/// `warden <args>` against the run's database; whether it exited 0, and what it printed.
fn warden(deployment: &Deployment, args: &[&str]) -> (bool, String) {
    let server = &deployment.servers[0];
    let output = std::process::Command::new(processes::warden_binary())
        .args(args)
        .env("DATABASE_URL", deployment.cluster.url("warden"))
        .env("WARDEN_MASTER_KEY", &server.master_key)
        .env("WARDEN_SIGNING_KEY", &server.signing_key)
        .env("WARDEN_LOG", "error")
        .output()
        .expect("warden runs");
    let printed = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), printed)
}

fn documented_codes() -> HashSet<String> {
    let table = std::process::Command::new(processes::warden_binary())
        .arg("problems")
        .output()
        .expect("warden problems");
    String::from_utf8_lossy(&table.stdout)
        .lines()
        .filter_map(|line| line.split('`').nth(1).map(str::to_owned))
        .collect()
}

fn whole_program_check(name: &'static str, (ok, printed): (bool, String)) -> Check {
    let last = printed.lines().last().unwrap_or_default().to_owned();
    Check {
        name,
        checked: if ok {
            "exit 0".to_owned()
        } else {
            last.clone()
        },
        violations: if ok {
            Vec::new()
        } else {
            printed
                .lines()
                .filter(|line| line.contains("only in the") || line.starts_with("Error"))
                .map(str::to_owned)
                .chain(std::iter::once(last))
                .collect()
        },
    }
}

async fn run(options: &Options) -> bool {
    let logs = std::env::temp_dir().join(format!(
        "warden-chaos-{}-{}",
        options.seed,
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&logs).expect("a log directory");
    println!(
        "chaos: seed {}, {} s, {} people, {PROCESSES} processes{}; logs in {}",
        options.seed,
        options.seconds,
        options.people,
        options
            .breakage
            .as_ref()
            .map_or(String::new(), |b| format!(", deliberately broken: {b}")),
        logs.display()
    );
    let mut deployment = deploy(options, &logs).await;
    let admin = admin_token(&deployment).await;
    let bases = deployment.servers.iter().map(|s| s.url("")).collect();
    let world = World::new(bases);

    let clock = async {
        tokio::time::sleep(Duration::from_secs(options.seconds)).await;
        world.stop();
    };
    let (live, injected, ()) = tokio::join!(
        workload::run(&world, options.seed, options.people, &admin),
        faults::inject(&mut deployment, &world, options.seed ^ 0xfa17),
        clock,
    );
    deployment.heal().await;
    let fresh = workload::read_stream(&world, "final reader", &admin, options.seed, false).await;

    let calls = world.history.calls();
    let facts = world.history.facts();
    let pool = sqlx::PgPool::connect(&deployment.cluster.url("warden"))
        .await
        .expect("the run's database");
    let mut checks = vec![
        checks::answers(&calls, &facts, &documented_codes()),
        checks::revocation(&calls, &facts),
        checks::rate_limit(&calls, &facts),
    ];
    for check in [
        checks::acknowledged(&pool, &facts).await,
        checks::single_use(&pool, &facts).await,
        checks::lockout(&pool, &facts).await,
        checks::stream(&pool, &live, &fresh).await,
    ] {
        checks.push(check.expect("the log could be read"));
    }
    // The views are compared with a rebuild and the chain verified once nothing writes.
    for server in &mut deployment.servers {
        server.kill().await;
    }
    checks.push(whole_program_check(
        "every view rebuilt from the log equals the live view (warden replay)",
        warden(&deployment, &["replay"]),
    ));
    checks.push(whole_program_check(
        "the audit chain verifies (warden verify)",
        warden(&deployment, &["verify"]),
    ));
    summarize(options, &calls, &injected, &checks)
}

fn summarize(
    options: &Options,
    calls: &[history::Call],
    injected: &std::collections::BTreeMap<&'static str, u64>,
    checks: &[Check],
) -> bool {
    type Refusals = std::collections::BTreeMap<String, u64>;
    let mut by_what: std::collections::BTreeMap<&str, (u64, u64, Refusals)> = Default::default();
    for call in calls {
        let entry = by_what.entry(call.what).or_default();
        entry.0 += 1;
        if call.status.is_some_and(|s| (200..300).contains(&s)) {
            entry.1 += 1;
        } else {
            let how = match (call.status, &call.code) {
                (None, _) => "no answer".to_owned(),
                (Some(status), Some(code)) => format!("{status} {code}"),
                (Some(status), None) => status.to_string(),
            };
            *entry.2.entry(how).or_default() += 1;
        }
    }
    println!("operations: {} requests", calls.len());
    for (what, (n, ok, refused)) in &by_what {
        let mut refused: Vec<(&String, &u64)> = refused.iter().collect();
        refused.sort_by(|a, b| b.1.cmp(a.1));
        let refused: Vec<String> = refused
            .iter()
            .take(3)
            .map(|(how, n)| format!("{how}: {n}"))
            .collect();
        println!(
            "  {what:<22} {n:>6} sent, {ok:>6} accepted; {}",
            refused.join(", ")
        );
    }
    let faults: Vec<String> = injected.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    println!("faults: {}", faults.join(", "));
    let mut passed = true;
    for check in checks {
        if check.violations.is_empty() {
            println!("  ok   {} ({})", check.name, check.checked);
        } else {
            passed = false;
            println!(
                "  FAIL {} ({}): {} violations",
                check.name,
                check.checked,
                check.violations.len()
            );
            for violation in check.violations.iter().take(5) {
                println!("       {violation}");
            }
        }
    }
    if !passed {
        println!("chaos: violations found with seed {}", options.seed);
    }
    passed
}
