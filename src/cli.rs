use std::sync::Arc;

use clap::{Parser, Subcommand};
use secrecy::SecretString;
use warden_aggregates::shared::Email;

use crate::adapters::clock::SystemClock;
use crate::settings::Settings;
use crate::startup::{self, Application, Overrides};
use crate::{openapi, telemetry};

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
    /// Platform administrators.
    #[command(subcommand)]
    Admin(AdminCommand),
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
        Command::Serve(settings) => {
            telemetry::init(&settings.log);
            let app = Application::build(
                &settings,
                Overrides {
                    clock: Arc::new(SystemClock),
                    master_key: None,
                    mailer: None,
                },
            )
            .await?;
            tracing::info!(port = app.port(), "warden listening");
            println!("Warden is listening on http://{}", settings.addr);
            app.run_until_stopped().await?;
        }
        Command::Migrate(settings) => {
            telemetry::init(&settings.log);
            let pool = startup::connect(&settings).await?;
            startup::migrate(&pool).await?;
            println!("migrations applied");
        }
        Command::Openapi => print!("{}", openapi::to_json()?),
        Command::Admin(AdminCommand::Create {
            email,
            password_stdin,
            settings,
        }) => {
            telemetry::init(&settings.log);
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let mut password = String::new();
            if password_stdin {
                std::io::stdin().read_line(&mut password)?;
            }
            let password = SecretString::from(password.trim_end_matches(['\r', '\n']).to_string());
            let (state, tasks) = startup::build_state(
                &settings,
                Overrides {
                    clock: Arc::new(SystemClock),
                    master_key: None,
                    mailer: None,
                },
            )
            .await?;
            let result = state.accounts.create_admin(email, password).await;
            for task in tasks {
                task.abort();
            }
            match result {
                Ok((id, true)) => println!("created admin account {id}"),
                Ok((id, false)) => println!("account {id} is now an admin"),
                Err(error) => anyhow::bail!("{}: {error}", error.code()),
            }
        }
    }
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
