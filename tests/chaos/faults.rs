//! The faults, at times and on targets drawn from the seed: a process killed and started again,
//! a process frozen and thawed, PostgreSQL restarted, one process's connections cut or slowed,
//! and a long writing transaction in another database.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection;

use crate::history::Fact;
use crate::processes::{Cluster, Server};
use crate::proxy::Proxy;
use crate::workload::World;

pub struct Deployment {
    pub cluster: Cluster,
    pub servers: Vec<Server>,
    pub proxies: Vec<Proxy>,
}

pub const KINDS: [&str; 6] = [
    "kill -9 and restart",
    "SIGSTOP then SIGCONT",
    "PostgreSQL fast restart",
    "connections cut",
    "connections slowed",
    "long transaction elsewhere",
];

impl Deployment {
    /// Starts `server` again, however long the database takes to be reachable.
    pub async fn restart(&mut self, index: usize) {
        for _ in 0..30 {
            if self.servers[index].try_start(Duration::from_secs(20)).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("process {index} did not start again");
    }

    /// Every connection healed and every process running.
    pub async fn heal(&mut self) {
        for proxy in &self.proxies {
            proxy.heal();
        }
        for index in 0..self.servers.len() {
            if !self.servers[index].is_running() {
                self.restart(index).await;
            }
        }
    }
}

/// Injects faults until the world stops; answers how many of each kind.
pub async fn inject(
    deployment: &mut Deployment,
    world: &World,
    seed: u64,
) -> BTreeMap<&'static str, u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut injected = BTreeMap::new();
    let mut long_transactions = Vec::new();
    loop {
        let quiet = Duration::from_millis(rng.gen_range(1000..4000));
        tokio::time::sleep(quiet).await;
        if world.stopping() {
            break;
        }
        let kind = KINDS[rng.gen_range(0..KINDS.len())];
        let target = rng.gen_range(0..deployment.servers.len());
        let at = world.history.now();
        let detail = match kind {
            "kill -9 and restart" => {
                deployment.servers[target].kill().await;
                let down = rng.gen_range(500..3000);
                tokio::time::sleep(Duration::from_millis(down)).await;
                deployment.restart(target).await;
                format!("process {target}, down {down} ms")
            }
            "SIGSTOP then SIGCONT" => {
                let frozen = rng.gen_range(1000..15_000);
                deployment.servers[target].signal("STOP");
                tokio::time::sleep(Duration::from_millis(frozen)).await;
                deployment.servers[target].signal("CONT");
                format!("process {target}, frozen {frozen} ms")
            }
            "PostgreSQL fast restart" => {
                deployment
                    .cluster
                    .pg_ctl(&["restart", "-m", "fast", "-w"])
                    .await;
                "every process".to_owned()
            }
            "connections cut" => {
                let cut = rng.gen_range(1000..5000);
                deployment.proxies[target].cut();
                tokio::time::sleep(Duration::from_millis(cut)).await;
                deployment.proxies[target].heal();
                format!("process {target}, {cut} ms")
            }
            "connections slowed" => {
                let delay = rng.gen_range(20..300);
                let slowed = rng.gen_range(3000..10_000);
                deployment.proxies[target].slow(Duration::from_millis(delay));
                tokio::time::sleep(Duration::from_millis(slowed)).await;
                deployment.proxies[target].heal();
                format!("process {target}, {delay} ms a packet for {slowed} ms")
            }
            _ => {
                let held = rng.gen_range(5000..20_000);
                let url = deployment.cluster.url("elsewhere");
                long_transactions.push(tokio::spawn(hold_a_transaction(url, held)));
                format!("{held} ms")
            }
        };
        *injected.entry(kind).or_insert(0) += 1;
        let process = (kind != "PostgreSQL fast restart" && kind != "long transaction elsewhere")
            .then_some(target);
        let until = world.history.now();
        world.history.note(Fact::Fault {
            kind,
            process,
            at,
            until,
            detail,
        });
    }
    for transaction in long_transactions {
        let _ = transaction.await;
    }
    injected
}

/// A writing transaction in another database that stays open for `ms`: it holds back the
/// horizon of every database on the cluster. A restart of PostgreSQL may end it early.
async fn hold_a_transaction(url: String, ms: u64) {
    let Ok(mut conn) = sqlx::PgConnection::connect(&url).await else {
        return;
    };
    let Ok(mut tx) = conn.begin().await else {
        return;
    };
    let written = sqlx::query("INSERT INTO held (at) VALUES (now())")
        .execute(&mut *tx)
        .await;
    if written.is_ok() {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let _ = tx.commit().await;
    }
}
