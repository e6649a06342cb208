//! Real `warden serve` processes and a PostgreSQL cluster of a test's own, shared by the fault
//! tests (`tests/api`) and the randomized fault run (`tests/chaos`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::process::{Child, Command};
use uuid::Uuid;
use warden::adapters::sealing::MasterKey;
use warden::settings::signing_key_to_base64;
use warden_projections::SigningKey;

/// One `warden serve` process and how to start it again on the same port and keys.
pub(crate) struct Server {
    pub(crate) database_url: String,
    pub(crate) port: u16,
    pub(crate) master_key: String,
    pub(crate) signing_key: String,
    pub(crate) mail_dir: PathBuf,
    /// Where the server's log lines go (JSON lines on stdout), when kept.
    pub(crate) log: Option<PathBuf>,
    /// The level logged to `log` (`debug` unless set).
    pub(crate) log_level: &'static str,
    /// More environment for the process.
    pub(crate) env: Vec<(String, String)>,
    child: Option<Child>,
}

/// The `warden` binary cargo built for these tests, or `WARDEN_BIN` (a copy that a rebuild
/// during a long run will not replace).
pub(crate) fn warden_binary() -> PathBuf {
    std::env::var_os("WARDEN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_warden")))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Server {
    pub(crate) fn new(database_url: String) -> Self {
        Self {
            database_url,
            port: free_port(),
            master_key: MasterKey::generate().to_base64(),
            signing_key: signing_key_to_base64(&SigningKey::generate(&mut rand::rngs::OsRng)),
            mail_dir: std::env::temp_dir().join(format!("warden-faults-{}", Uuid::new_v4())),
            log: None,
            log_level: "debug",
            env: Vec::new(),
            child: None,
        }
    }

    /// Another process of the same deployment (same keys), on its own port, reaching the
    /// database at `database_url`.
    pub(crate) fn sibling(&self, database_url: String) -> Self {
        Self {
            database_url,
            port: free_port(),
            master_key: self.master_key.clone(),
            signing_key: self.signing_key.clone(),
            mail_dir: self.mail_dir.clone(),
            log: None,
            log_level: self.log_level,
            env: self.env.clone(),
            child: None,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends `signal` (`STOP`, `CONT`) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("the process runs");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "signal {signal} sent");
    }

    pub(crate) async fn start(&mut self) {
        assert!(
            self.try_start(Duration::from_secs(10)).await,
            "warden did not become ready"
        );
    }

    /// Starts the process and waits up to `within` for `/readyz`; false (and the process
    /// killed) when it did not get ready, e.g. because its database could not be reached.
    pub(crate) async fn try_start(&mut self, within: Duration) -> bool {
        let child = Command::new(warden_binary())
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("DATABASE_URL", &self.database_url)
            .env("WARDEN_ADDR", format!("127.0.0.1:{}", self.port))
            .env("WARDEN_MASTER_KEY", &self.master_key)
            .env("WARDEN_SIGNING_KEY", &self.signing_key)
            .env("WARDEN_MAIL_DIR", &self.mail_dir)
            .env("WARDEN_CLIENT_ATTEMPTS_PER_MINUTE", "1000000")
            .env(
                "WARDEN_LOG",
                if self.log.is_some() {
                    self.log_level
                } else {
                    "warn"
                },
            )
            .stdout(match &self.log {
                Some(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .expect("log file"),
                ),
                None => Stdio::null(),
            })
            .kill_on_drop(true)
            .spawn()
            .expect("warden starts");
        self.child = Some(child);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(response) = client.get(self.url("/readyz")).send().await {
                if response.status() == StatusCode::OK {
                    return true;
                }
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|child| matches!(child.try_wait(), Ok(Some(_))));
            if exited {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill().await;
        false
    }

    /// Whether the process was started and not killed since.
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    pub(crate) async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("killed");
        }
    }
}

/// A PostgreSQL cluster of the test's own (the machine's binaries, a temporary directory, a free
/// port), so that it can be stopped and started without touching anyone else's databases.
pub(crate) struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    pub(crate) port: u16,
}

fn as_postgres(program: PathBuf) -> Command {
    // initdb and the server refuse to run as root.
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.arg("-u").arg("postgres").arg("--").arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
    })
}

impl Cluster {
    pub(crate) async fn create() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()?;
        let data = std::env::temp_dir().join(format!("warden-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data).ok()?;
        if running_as_root() {
            Command::new("chown")
                .arg("postgres")
                .arg(&data)
                .status()
                .await
                .ok()?;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let initdb = as_postgres(bin.join("initdb"))
            .arg("-D")
            .arg(data.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .stdout(Stdio::null())
            .status()
            .await
            .ok()?;
        assert!(initdb.success(), "initdb");
        let cluster = Self { bin, data, port };
        cluster.pg_ctl(&["start", "-w"]).await;
        Some(cluster)
    }

    pub(crate) async fn pg_ctl(&self, action: &[&str]) {
        let options = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=on",
            self.port,
            self.data.display()
        );
        let status = as_postgres(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data.join("data"))
            .arg("-l")
            .arg(self.data.join("server.log"))
            .arg("-o")
            .arg(options)
            .args(action)
            .stdout(Stdio::null())
            .status()
            .await
            .expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl {action:?}");
    }

    pub(crate) fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data.join("data"))
            .args(["stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Posts JSON and answers the status and body.
pub(crate) async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = client.request(method, url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answered");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A writing transaction in another database of the same server: while it is open, no view and
/// no reactor can read past it (the xmin horizon is cluster-wide).
pub(crate) async fn hold_the_horizon(database_url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    let base = database_url
        .rsplit_once('/')
        .map_or(database_url, |(b, _)| b);
    let mut conn = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .expect("the maintenance database answers");
    sqlx::query("BEGIN")
        .execute(&mut conn)
        .await
        .expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut conn)
        .await
        .expect("a transaction id taken");
    conn
}
