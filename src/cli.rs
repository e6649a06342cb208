use std::sync::Arc;

use clap::{Parser, Subcommand};

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
