//! Shared set-up for Warden's benchmarks: a fresh database on the benchmark server, and an
//! account with a history of a chosen length.

pub mod load;
pub mod processes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;
use warden::adapters::clock::SystemClock;
use warden::adapters::sealing::MasterKey;
use warden::adapters::store::EventStore;
use warden::adapters::totp::RfcTotp;
use warden_aggregates::account::{
    Account, AccountCommand, AccountServices, AuthMethod, NewSession, PasswordVerifier,
    SecurityPolicy, SessionCommand, SessionEndReason,
};
use warden_aggregates::shared::{AccountId, PasswordHash, SealedText, SessionId, TokenHash};

/// Benchmarks measure the event store and projectors, not argon2: a plain comparison stands in.
pub struct PlainPasswords;

#[async_trait]
impl PasswordVerifier for PlainPasswords {
    async fn verify(&self, hash: &PasswordHash, candidate: &SecretString) -> bool {
        hash.0 == format!("plain:{}", candidate.expose_secret())
    }
}

pub fn services() -> AccountServices {
    AccountServices {
        clock: Arc::new(SystemClock),
        passwords: Arc::new(PlainPasswords),
        totp: Arc::new(RfcTotp::new(Arc::new(MasterKey::generate()))),
        policy: SecurityPolicy::default(),
    }
}

/// A new database, migrated, on the server of `DATABASE_URL` (default: local PostgreSQL).
pub async fn fresh_pool() -> anyhow::Result<PgPool> {
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    let name = format!("warden_bench_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{base}/postgres")).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(32)
        .connect(&format!("{base}/{name}"))
        .await?;
    warden::startup::migrate(&pool).await?;
    Ok(pool)
}

pub fn log_in(password: &str) -> AccountCommand {
    AccountCommand::from(SessionCommand::LogIn {
        password: SecretString::from(password.to_string()),
        session: NewSession {
            session_id: SessionId(Uuid::now_v7()),
            token_hash: TokenHash(Uuid::new_v4().to_string()),
            device: None,
            method: AuthMethod::Password,
            sso: None,
            device_hash: None,
        },
        challenge_hash: TokenHash(Uuid::new_v4().to_string()),
        mfa_required_by: vec![],
    })
}

/// Registers an account and gives it at least `events` events (logins and logouts).
pub async fn account_with_history(
    store: &EventStore,
    services: &AccountServices,
    events: usize,
) -> anyhow::Result<String> {
    let id = AccountId(Uuid::now_v7());
    let key = id.to_string();
    let metadata = HashMap::new();
    store
        .execute::<Account>(
            &key,
            || AccountCommand::Register {
                account_id: id,
                email: SealedText("sealed".into()),
                display_name: None,
                password_hash: PasswordHash("plain:right".into()),
            },
            services,
            &metadata,
        )
        .await?;
    let mut written = 1;
    while written < events {
        store
            .execute::<Account>(&key, || log_in("right"), services, &metadata)
            .await?;
        store
            .execute::<Account>(
                &key,
                || {
                    AccountCommand::from(SessionCommand::EndAll {
                        reason: SessionEndReason::RevokedAll,
                    })
                },
                services,
                &metadata,
            )
            .await?;
        written += 2;
    }
    Ok(key)
}

pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Warden on `database_url`, in this process, on a free port, with fresh keys; answers its base
/// URL and state. Its projectors start with it.
pub async fn serve_warden(
    database_url: &str,
) -> anyhow::Result<(String, actix_web::web::Data<warden::startup::AppState>)> {
    let settings = warden::cli::settings_from(&[
        "--database-url",
        database_url,
        "--addr",
        "127.0.0.1:0",
        "--log",
        "error",
        "--mail-dir",
        "/tmp/warden-bench-mail",
        // The load comes from one address: it is not a credential-stuffing client.
        "--client-attempts-per-minute",
        "100000000",
    ]);
    let app = warden::startup::Application::build(
        &settings,
        warden::startup::Overrides {
            clock: Arc::new(SystemClock),
            master_key: Some(MasterKey::generate()),
            mailer: None,
            signing_key: None,
        },
    )
    .await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    Ok((base, state))
}

/// The newest event of the log of the Warden in `state`, if it has one.
pub async fn log_head(
    state: &warden::startup::AppState,
) -> anyhow::Result<Option<warden_projections::Cursor>> {
    state
        .app
        .commands
        .head()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// A platform admin's session token on the Warden at `base`.
pub async fn admin_session(
    base: &str,
    state: &warden::startup::AppState,
) -> anyhow::Result<String> {
    let email = "bench.admin@example.com";
    let password = "a long benchmark passphrase";
    state
        .app
        .admin
        .create_admin(
            warden_aggregates::shared::Email::parse(email).map_err(|e| anyhow::anyhow!("{e}"))?,
            SecretString::from(password),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let session: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/v1/sessions"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await?
        .json()
        .await?;
    session["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no session: {session}"))
}

/// `GET /v1/events/stream?after=` on the Warden at `base`, as `token`, checked to have opened.
pub async fn open_stream(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    after: &str,
) -> anyhow::Result<reqwest::Response> {
    let response = client
        .get(format!("{base}/v1/events/stream?after={after}"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "stream: {}",
        response.status()
    );
    Ok(response)
}
