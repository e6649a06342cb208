//! Real `warden serve` processes for the benchmarks that measure more than one process.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use warden::adapters::sealing::MasterKey;
use warden::settings::signing_key_to_base64;
use warden_projections::SigningKey;

/// One `warden serve` process of the deployment under test.
pub struct Process {
    child: Child,
    pub base: String,
}

/// Warden processes of one deployment (same database and keys), started as an operator would.
pub struct Deployment {
    database_url: String,
    master_key: String,
    signing_key: String,
}

impl Deployment {
    /// A deployment on `database_url` with fresh keys.
    pub fn new(database_url: String) -> Self {
        Self {
            database_url,
            master_key: MasterKey::generate().to_base64(),
            signing_key: signing_key_to_base64(&SigningKey::generate(&mut rand::rngs::OsRng)),
        }
    }

    /// One more `warden serve` (the release binary beside the bench's), once its credential
    /// cache is trusted.
    pub async fn start(&mut self) -> anyhow::Result<Process> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let exe = std::env::current_exe()?.with_file_name("warden");
        let child = Command::new(&exe)
            .arg("serve")
            .env("DATABASE_URL", &self.database_url)
            .env("WARDEN_ADDR", format!("127.0.0.1:{port}"))
            .env("WARDEN_MASTER_KEY", &self.master_key)
            .env("WARDEN_SIGNING_KEY", &self.signing_key)
            .env("WARDEN_LOG", "error")
            .env("WARDEN_MAIL_DIR", "/tmp/warden-bench-mail")
            .env("WARDEN_CLIENT_ATTEMPTS_PER_MINUTE", "100000000")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("{}: {e} (build warden --release)", exe.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..400 {
            let metrics = client.get(format!("{base}/metrics")).send().await;
            if let Ok(response) = metrics {
                if response
                    .text()
                    .await?
                    .contains("warden_credential_cache_trusted 1")
                {
                    return Ok(Process { child, base });
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("warden on {port} did not become ready")
    }

    /// A platform admin, made as an operator does (`warden admin create`).
    pub async fn admin(&self, email: &str, password: &str) -> anyhow::Result<()> {
        let exe = std::env::current_exe()?.with_file_name("warden");
        let mut child = Command::new(exe)
            .args(["admin", "create", "--email", email, "--password-stdin"])
            .env("DATABASE_URL", &self.database_url)
            .env("WARDEN_MASTER_KEY", &self.master_key)
            .env("WARDEN_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin.write_all(format!("{password}\n").as_bytes()).await?;
        }
        anyhow::ensure!(child.wait().await?.success(), "admin create failed");
        Ok(())
    }
}

impl Process {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.signal("TERM")?;
        self.child.wait().await?;
        Ok(())
    }

    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.child.id().ok_or_else(|| anyhow::anyhow!("exited"))?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal}");
        Ok(())
    }
}
