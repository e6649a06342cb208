use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use clap::{Parser, Subcommand};
use secrecy::SecretString;
use warden_aggregates::shared::Email;
use warden_projections::audit_chain::{self, verify_export};
use warden_projections::replay::replay;
use warden_projections::VerifyingKey;

use crate::adapters::clock::SystemClock;
use crate::http::openapi;
use crate::settings::Settings;
use crate::startup::{self, Application, Overrides};
use crate::telemetry;

#[derive(Parser)]
#[command(name = "warden", about = "Event-sourced account security", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, start the projectors and serve HTTP.
    Serve(Settings),
    /// Apply migrations and exit.
    Migrate(Settings),
    /// Print the OpenAPI document.
    Openapi,
    /// Print the table of problem codes (docs/problems.md).
    Problems,
    /// Platform administrators.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Rebuild every view from the log into fresh tables and compare them with the live ones;
    /// exits 1 when they differ.
    Replay(Settings),
    /// Check the audit chain: online against the database, or offline from an export of
    /// `GET /v1/audit/chain` and the key of `GET /v1/audit/public-key`; exits 1 when it fails.
    Verify {
        /// An export of `GET /v1/audit/chain` (NDJSON) to check instead of the database.
        #[arg(long, requires = "public_key")]
        export: Option<PathBuf>,
        /// The checkpoint key: the JSON of `GET /v1/audit/public-key`, or its base64 key alone.
        /// Online, the configured signing key's public half is used when this is absent.
        #[arg(long)]
        public_key: Option<PathBuf>,
        #[command(flatten)]
        settings: Settings,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an admin account, or make an existing account an admin.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password (for a new account) from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        settings: Settings,
    },
}

pub async fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(settings) => serve(settings).await,
        Command::Migrate(settings) => {
            telemetry::init(&settings.log);
            let pool = startup::connect(&settings).await?;
            startup::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Openapi => {
            print!("{}", openapi::to_json()?);
            Ok(())
        }
        Command::Problems => {
            print!("{}", crate::app::problem::markdown_table());
            Ok(())
        }
        Command::Replay(settings) => rebuild_and_compare(settings).await,
        Command::Verify {
            export,
            public_key,
            settings,
        } => verify(export, public_key, settings).await,
        Command::Admin(AdminCommand::Create {
            email,
            password_stdin,
            settings,
        }) => create_admin(&email, password_stdin, settings).await,
    }
}

fn production() -> Overrides {
    Overrides {
        clock: Arc::new(SystemClock),
        master_key: None,
        mailer: None,
        signing_key: None,
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    telemetry::init(&settings.log);
    let app = Application::build(&settings, production()).await?;
    tracing::info!(port = app.port(), "warden listening");
    println!("Warden is listening on http://{}", settings.addr);
    app.run_until_stopped().await?;
    Ok(())
}

async fn rebuild_and_compare(settings: Settings) -> anyhow::Result<()> {
    telemetry::init_on_stderr(&settings.log);
    let pool = startup::connect(&settings).await?;
    startup::migrate(&pool).await?;
    let options = settings
        .database_url
        .parse()
        .context("DATABASE_URL is not a PostgreSQL URL")?;
    // No signer: checkpoints are the server's to sign, never a rebuild's.
    let report = replay(&pool, options, &warden_projections::all(None)).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.identical {
        for table in report.tables.iter().filter(|t| !t.identical()) {
            eprintln!(
                "{}: {} rows only in the live view, {} only in the rebuild",
                table.table, table.only_live, table.only_rebuilt
            );
        }
        std::process::exit(1);
    }
    Ok(())
}

async fn verify(
    export: Option<PathBuf>,
    public_key: Option<PathBuf>,
    settings: Settings,
) -> anyhow::Result<()> {
    telemetry::init_on_stderr(&settings.log);
    let key = match &public_key {
        Some(path) => read_public_key(path)?,
        None => settings.load_signing_key()?.verifying_key(),
    };
    let verification = match export {
        Some(path) => {
            let file = std::fs::File::open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            verify_export(std::io::BufReader::new(file).lines(), key)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => {
            let pool = startup::connect(&settings).await?;
            audit_chain::verify(&pool, key).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&verification)?);
    if !verification.ok {
        std::process::exit(1);
    }
    Ok(())
}

async fn create_admin(email: &str, password_stdin: bool, settings: Settings) -> anyhow::Result<()> {
    telemetry::init(&settings.log);
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let mut password = String::new();
    if password_stdin {
        std::io::stdin().read_line(&mut password)?;
    }
    let password = SecretString::from(password.trim_end_matches(['\r', '\n']).to_string());
    let (state, tasks) = startup::build_state(&settings, production()).await?;
    let result = state.app.admin.create_admin(email, password).await;
    for task in tasks {
        task.abort();
    }
    match result {
        Ok((id, true)) => println!("created admin account {id}"),
        Ok((id, false)) => println!("account {id} is now an admin"),
        Err(error) => anyhow::bail!("{}: {error}", error.code()),
    }
    Ok(())
}

/// A public key file: the JSON `GET /v1/audit/public-key` answers, or the base64 key alone.
fn read_public_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    use base64::Engine;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let encoded = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => json["public_key"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("{}: no public_key member", path.display()))?,
        Err(_) => text.trim().to_string(),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .with_context(|| format!("{}: the key is not base64", path.display()))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{}: not a 32-byte Ed25519 key", path.display()))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| anyhow::anyhow!("{}: not an Ed25519 public key", path.display()))
}

/// Settings as the command line and environment give them, for embedding (tests, benchmarks).
pub fn settings_from(args: &[&str]) -> Settings {
    #[derive(Parser)]
    struct Only {
        #[command(flatten)]
        settings: Settings,
    }
    Only::parse_from(std::iter::once("warden").chain(args.iter().copied())).settings
}
