//! Wiring: the database pool, migrations, adapters, projectors and the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use warden_aggregates::account::AccountServices;
use warden_aggregates::shared::Clock;
use warden_projections::audit_chain::TrustedKeys;
use warden_projections::{audit_chain, Projections, Projector, Reactor, SigningKey};

use crate::adapters::barrier;
use crate::adapters::client_throttle::ClientThrottle;
use crate::adapters::keys::KeyRing;
use crate::adapters::mail::{FileOutbox, Mailer, SmtpMailer};
use crate::adapters::nats::NatsPublisher;
use crate::adapters::oidc::Oidc;
use crate::adapters::password::Argon2Passwords;
use crate::adapters::sealing::MasterKey;
use crate::adapters::totp::RfcTotp;
use crate::app::credentials::activity::Activity;
use crate::app::credentials::cache::CredentialCache;
use crate::app::credentials::follower::Follower;
use crate::app::mail_outbox::MailOutbox;
use crate::app::policy_sweep::PolicySweep;
use crate::app::wiring::SsoDeps;
use crate::app::{App, Deps};
use crate::metrics::Metrics;
use crate::settings::Settings;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct AppState {
    pub app: App,
    /// Signs the audit chain's checkpoints; its public half checks them.
    pub signing_key: SigningKey,
    /// The signing key's public half and those of the keys it replaced.
    pub trusted_keys: TrustedKeys,
    pub projections: Arc<Projections>,
    pub pool: PgPool,
    pub metrics: Metrics,
    /// This process's row in `warden_processes` (the revocation barrier).
    pub process_id: uuid::Uuid,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Where people reach Warden (`WARDEN_PUBLIC_URL`), without a trailing slash.
    pub public_url: String,
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the caller may swap: tests pass their own clock, key and mailer.
pub struct Overrides {
    pub clock: Arc<dyn Clock>,
    pub master_key: Option<MasterKey>,
    pub mailer: Option<Arc<dyn Mailer>>,
    pub signing_key: Option<SigningKey>,
}

pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = settings
        .database_url
        .parse()
        .context("DATABASE_URL is not a PostgreSQL URL")?;
    // An open writing transaction holds every projector back, on every process. A process frozen
    // (or cut off) inside one would stall every view until it woke; PostgreSQL ends such a session
    // after this long, which is far beyond any pause between two statements of a healthy one.
    let options = options.options([("idle_in_transaction_session_timeout", "5000")]);
    // A name of this process's own on its connections: the commit notification names it, so the
    // process passes over the notifications of its own commits (it woke its readers already).
    let options = options.application_name(&format!("warden-{}", uuid::Uuid::new_v4().simple()));
    PgPoolOptions::new()
        .max_connections(settings.db_connections.max(4))
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("connecting to PostgreSQL")
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("applying migrations")
}

/// Everything a Warden process runs on, with its projectors started.
pub async fn build_state(
    settings: &Settings,
    overrides: Overrides,
) -> anyhow::Result<(web::Data<AppState>, Vec<JoinHandle<()>>)> {
    let pool = connect(settings).await?;
    migrate(&pool).await?;
    let master = Arc::new(master_key(settings, overrides.master_key, &pool).await?);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let passwords = Argon2Passwords::new(cores).map_err(|e| anyhow::anyhow!(e))?;
    let totp = Arc::new(RfcTotp::new(master.clone()));
    let services = Arc::new(AccountServices {
        clock: overrides.clock.clone(),
        passwords: Arc::new(passwords.clone()),
        totp: totp.clone(),
        policy: settings.policy(),
    });
    let signing_key = match overrides.signing_key {
        Some(key) => key,
        None => settings.load_signing_key()?,
    };
    let keys = KeyRing::new(pool.clone(), master);
    let sweep = Arc::new(PolicySweep::default());
    let outbox = Arc::new(MailOutbox::new(
        pool.clone(),
        keys.clone(),
        match overrides.mailer {
            Some(mailer) => mailer,
            None => mailer_from(settings)?,
        },
        settings.public_url.clone(),
        overrides.clock.clone(),
    ));
    let reactors: Vec<Arc<dyn Reactor>> = vec![sweep.clone(), outbox];
    let projectors = projectors(settings, &signing_key).await?;
    let projections = Projections::with_reactors(pool.clone(), projectors, reactors);
    let metrics = Metrics::new();
    let credentials = CredentialRuntime::new(settings, &pool);
    let app = App::new(Deps {
        pool: pool.clone(),
        keys,
        passwords,
        services,
        projections: projections.clone(),
        metrics: metrics.clone(),
        totp,
        totp_issuer: settings.totp_issuer.clone(),
        credential_cache: credentials.follower.cache.clone(),
        activity: credentials.activity,
        revocation_barrier: credentials.revocation_barrier,
        introspections_per_second: settings.introspect_per_second,
        throttle: ClientThrottle::new(settings.client_attempts_per_minute),
        sso: single_sign_on(settings)?,
        webauthn: settings.webauthn()?.map(Arc::new),
    });
    // The sweep issues commands through the use cases, which need the projections it runs in.
    sweep.attach(app.commands.clone());
    let mut tasks = projections.start();
    tasks.push(credentials.activity_task);
    let process_id = credentials.follower.process;
    tasks.push(tokio::spawn(credentials.follower.run()));
    tasks.push(tokio::spawn(sign_checkpoints(
        pool.clone(),
        signing_key.clone(),
        Duration::from_secs(settings.checkpoint_seconds.max(1)),
    )));
    let state = web::Data::new(AppState {
        app,
        trusted_keys: settings.trusted_signing_keys(&signing_key)?,
        signing_key,
        projections,
        pool,
        metrics,
        process_id,
        trusted_proxies: settings.trusted_proxies.clone(),
        public_url: settings.public_url.trim_end_matches('/').to_string(),
    });
    Ok((state, tasks))
}

/// The master key (the caller's, or the configured one) with the other master keys and the
/// database's server key.
pub async fn master_key(
    settings: &Settings,
    given: Option<MasterKey>,
    pool: &PgPool,
) -> anyhow::Result<MasterKey> {
    let key = match given {
        Some(key) => settings.with_other_master_keys(key)?,
        None => settings.load_master_key()?,
    };
    crate::adapters::keys::with_server_key(pool, key).await
}

/// The views every process keeps, and the stream's publisher when NATS is configured.
async fn projectors(
    settings: &Settings,
    signing_key: &SigningKey,
) -> anyhow::Result<Vec<Arc<dyn Projector>>> {
    let mut projectors = warden_projections::all(Some(signing_key.clone()));
    if let Some(url) = &settings.nats_url {
        let publisher = NatsPublisher::connect(url, &settings.nats_subject)
            .await
            .context("WARDEN_NATS_URL")?;
        projectors.push(Arc::new(publisher));
    }
    Ok(projectors)
}

/// What checks credentials from memory: the cache with its log follower, and the writer of
/// activity behind the requests (docs/adr/0015).
struct CredentialRuntime {
    follower: Follower,
    activity: Activity,
    activity_task: JoinHandle<()>,
    revocation_barrier: bool,
}

impl CredentialRuntime {
    fn new(settings: &Settings, pool: &PgPool) -> Self {
        let revocation_barrier = revocation_barrier();
        let cache = Arc::new(CredentialCache::new(
            settings.credential_cache_limits(),
            !revocation_barrier,
        ));
        let (activity, activity_task) = Activity::start(pool.clone());
        let follower = Follower {
            pool: pool.clone(),
            cache,
            process: uuid::Uuid::new_v4(),
            host: format!("{}:{}", hostname(), std::process::id()),
        };
        Self {
            follower,
            activity,
            activity_task,
            revocation_barrier,
        }
    }
}

/// A debug build may be told to run without the revocation barrier, so tests can show what goes
/// wrong then. A release build always has it.
fn revocation_barrier() -> bool {
    let off = cfg!(debug_assertions)
        && std::env::var("WARDEN_UNSAFE_NO_REVOCATION_BARRIER").is_ok_and(|v| v == "1");
    if off {
        tracing::warn!("running WITHOUT the revocation barrier: for tests only");
    }
    !off
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Signs the audit chain's head every `every` when events arrived since the last checkpoint, so
/// that an export or a verification never has a long unsigned tail.
async fn sign_checkpoints(pool: PgPool, key: SigningKey, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(error) = audit_chain::sign_head(&pool, &key).await {
            tracing::warn!(%error, "audit checkpoint not signed");
        }
    }
}

impl Application {
    pub async fn build(settings: &Settings, overrides: Overrides) -> anyhow::Result<Self> {
        let (state, tasks) = build_state(settings, overrides).await?;
        let listener = TcpListener::bind(&settings.addr)
            .with_context(|| format!("binding {}", settings.addr))?;
        let port = listener.local_addr()?.port();
        let server = crate::http::server::serve(listener, state.clone(), &settings.cors_origins)?;
        Ok(Self {
            port,
            server,
            state,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (and with it the projectors) from elsewhere.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in self.tasks {
            task.abort();
        }
        // No revocation should wait for a process that is gone.
        if let Err(error) = barrier::deregister(&self.state.pool, self.state.process_id).await {
            tracing::warn!(%error, "process not deregistered; its lease runs out on its own");
        }
        // A projector stopped mid-batch leaves its transaction open on a pooled connection;
        // closing the pool ends it (rolled back) instead of holding every reader's horizon back.
        self.state.pool.close().await;
        result
    }
}

fn mailer_from(settings: &Settings) -> anyhow::Result<Arc<dyn Mailer>> {
    let from = settings
        .mail_from
        .parse()
        .context("WARDEN_MAIL_FROM is not a mailbox")?;
    Ok(match &settings.smtp_url {
        Some(url) => Arc::new(SmtpMailer::new(url, from).context("WARDEN_SMTP_URL")?),
        None => Arc::new(FileOutbox::new(settings.mail_dir.clone(), from)),
    })
}

fn single_sign_on(settings: &Settings) -> anyhow::Result<SsoDeps> {
    Ok(SsoDeps {
        oidc: Oidc::new().context("the OpenID Connect client")?,
        redirect_uri: settings.sso_redirect_uri(),
        return_origins: settings.sso_return_origins(),
    })
}
