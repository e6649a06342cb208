use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use clap::{Parser, Subcommand};
use secrecy::SecretString;
use warden_aggregates::shared::Email;
use warden_projections::audit_chain::TrustedKeys;
use warden_projections::audit_chain::{self, verify_export};
use warden_projections::replay::replay_reporting;
use warden_projections::{SigningKey, VerifyingKey};

use crate::adapters::clock::SystemClock;
use crate::adapters::keys;
use crate::adapters::sealing::MasterKey;
use crate::http::openapi;
use crate::progress::Reporter;
use crate::settings::{
    public_key_from_base64, public_key_to_base64, signing_key_to_base64, Settings,
};
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
    /// The keys Warden signs and seals with.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Rebuild every view from the log into fresh tables and compare them with the live ones;
    /// exits 1 when they differ.
    Replay(Settings),
    /// Check the audit chain: online against the database, or offline from an export of
    /// `GET /v1/audit/chain` and the key of `GET /v1/audit/public-key`; exits 1 when it fails.
    Verify {
        /// An export of `GET /v1/audit/chain` (NDJSON) to check instead of the database.
        #[arg(long)]
        export: Option<PathBuf>,
        /// The checkpoint keys: the JSON of `GET /v1/audit/public-key` (every key it lists), or
        /// one base64 key alone; may be given more than once. Online, the configured signing
        /// key and retired keys are used when this is absent.
        #[arg(long)]
        public_key: Vec<PathBuf>,
        #[command(flatten)]
        settings: Settings,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// A new key for audit checkpoints. With development keys (no WARDEN_SIGNING_KEY) the data
    /// directory's key is replaced and the old public half kept among the retired keys; with a
    /// configured key, the new key and the public half to retire are printed as JSON for the
    /// operator to configure. Processes sign with the new key from their next start.
    RotateSigning(Settings),
    /// A new master key, printed with its id, for the first step of a master key rotation
    /// (docs/operations.md, "Keys"). Nothing is changed.
    NewMaster,
    /// Seals every account's data key and the server key again under the current master key,
    /// online, in batches; prints what was sealed again, by the key that had sealed it. With a
    /// development key (no WARDEN_MASTER_KEY) a new key replaces it first and the old one is kept
    /// among the retired keys in the data directory: restart the development server afterwards.
    RotateMaster(Settings),
    /// Which master key seals the server key and how many data keys each master key sealed,
    /// with the ids of the keys this configuration opens with. Nothing is changed.
    Status(Settings),
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
        Command::Keys(KeysCommand::RotateSigning(settings)) => rotate_signing(&settings),
        Command::Keys(KeysCommand::NewMaster) => {
            let key = MasterKey::generate();
            let out = serde_json::json!({ "key_id": key.id(), "master_key": key.to_base64() });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Keys(KeysCommand::RotateMaster(settings)) => rotate_master(&settings).await,
        Command::Keys(KeysCommand::Status(settings)) => keys_status(&settings).await,
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
    let progress = Reporter::on_stderr();
    let projectors = warden_projections::all(None);
    let report = replay_reporting(&pool, options, &projectors, &progress).await?;
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
    public_key: Vec<PathBuf>,
    settings: Settings,
) -> anyhow::Result<()> {
    telemetry::init_on_stderr(&settings.log);
    if export.is_some() && public_key.is_empty() {
        anyhow::bail!("--export needs --public-key: the keys the checkpoints must be signed with");
    }
    let key = if public_key.is_empty() {
        settings.trusted_signing_keys(&settings.load_signing_key()?)?
    } else {
        let mut keys = Vec::new();
        for path in &public_key {
            keys.extend(read_public_keys(path)?);
        }
        TrustedKeys::new(keys)
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
            audit_chain::verify_reporting(&pool, key, &Reporter::on_stderr()).await?
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

/// A public key file: the JSON `GET /v1/audit/public-key` answers (every key it lists), or one
/// base64 key alone.
fn read_public_keys(path: &Path) -> anyhow::Result<Vec<VerifyingKey>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let encoded: Vec<String> = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => {
            let listed: Vec<String> = json["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k["public_key"].as_str().map(str::to_string))
                .collect();
            if listed.is_empty() {
                let one = json["public_key"].as_str().map(str::to_string);
                vec![one.ok_or_else(|| anyhow::anyhow!("{}: no public_key", path.display()))?]
            } else {
                listed
            }
        }
        Err(_) => vec![text.trim().to_string()],
    };
    encoded
        .iter()
        .map(|key| public_key_from_base64(key).with_context(|| path.display().to_string()))
        .collect()
}

/// `warden keys rotate-signing` (docs/operations.md, "Keys").
fn rotate_signing(settings: &Settings) -> anyhow::Result<()> {
    let current = settings.load_signing_key()?;
    let retired = public_key_to_base64(&current.verifying_key());
    let new = SigningKey::generate(&mut rand::rngs::OsRng);
    let new_id = audit_chain::key_id(&new.verifying_key());
    if settings.signing_key.is_some() {
        let out = serde_json::json!({
            "key_id": new_id,
            "signing_key": signing_key_to_base64(&new),
            "retired_key_id": audit_chain::key_id(&current.verifying_key()),
            "retired_public_key": retired,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        eprintln!(
            "On every process: set WARDEN_SIGNING_KEY to signing_key, add retired_public_key to \
             WARDEN_RETIRED_SIGNING_KEYS, and restart it."
        );
        return Ok(());
    }
    let dir = settings.retired_keys_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let retired_path = dir.join(format!(
        "{}.pub",
        audit_chain::key_id(&current.verifying_key())
    ));
    std::fs::write(&retired_path, &retired)
        .with_context(|| format!("writing {}", retired_path.display()))?;
    settings.replace_development_signing_key(&new)?;
    println!(
        "{}",
        serde_json::json!({ "key_id": new_id, "retired": retired_path })
    );
    Ok(())
}

/// `warden keys rotate-master` (docs/operations.md, "Keys").
async fn rotate_master(settings: &Settings) -> anyhow::Result<()> {
    telemetry::init_on_stderr(&settings.log);
    let pool = startup::connect(settings).await?;
    startup::migrate(&pool).await?;
    let mut given = None;
    if settings.master_key.is_none() {
        let old = settings.load_master_key()?;
        let new = MasterKey::generate();
        settings.replace_development_master_key(&old, &new)?;
        given = Some(new);
    }
    let before = keys::sealed_by(&pool).await?;
    let master = startup::master_key(settings, given, &pool).await?;
    let resealed = keys::reseal_all(&pool, &master).await?;
    let out = serde_json::json!({
        "key_id": master.id(),
        "opens_with": master.ids(),
        "before": before,
        "resealed": resealed,
        "after": keys::sealed_by(&pool).await?,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    if resealed.unreadable > 0 {
        anyhow::bail!(
            "{} data keys open with no configured master key",
            resealed.unreadable
        );
    }
    Ok(())
}

/// `warden keys status`.
async fn keys_status(settings: &Settings) -> anyhow::Result<()> {
    let pool = startup::connect(settings).await?;
    startup::migrate(&pool).await?;
    let master = settings.load_master_key()?;
    let out = serde_json::json!({
        "key_id": master.id(),
        "opens_with": master.ids(),
        "sealed": keys::sealed_by(&pool).await?,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
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
