//! `spawn_app()`: a fresh database, migrated, and the real server on a free port with a clock
//! the test moves by hand.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;
use warden::adapters::clock::ManualClock;
use warden::adapters::mail::Mailer;
use warden::adapters::sealing::MasterKey;
use warden::cli::settings_from;
use warden::settings::{signing_key_from_base64, signing_key_to_base64};
use warden::startup::{Application, Overrides};
use warden_projections::{Cursor, SigningKey};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub clock: Arc<ManualClock>,
    pub mail_dir: PathBuf,
    pub state: actix_web::web::Data<warden::startup::AppState>,
    pub database_url: String,
    pub signing_key: String,
    launch: Launch,
    server: actix_web::dev::ServerHandle,
}

fn server_url() -> String {
    std::env::var("WARDEN_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A new, empty database on the test server.
pub async fn fresh_database() -> String {
    let server = server_url();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    let name = format!("warden_test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{base}/postgres"))
        .await
        .expect("the test PostgreSQL server answers");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("database created");
    format!("{base}/{name}")
}

pub async fn spawn_app() -> TestApp {
    spawn_with(None).await
}

pub async fn spawn_with_mailer(mailer: Arc<dyn Mailer>) -> TestApp {
    spawn_with(Some(mailer)).await
}

async fn spawn_with(mailer: Option<Arc<dyn Mailer>>) -> TestApp {
    spawn_configured(mailer, &[]).await
}

/// A fresh app started with extra command-line settings, e.g. `["--nats-url", url]`.
pub async fn spawn_with_args(args: &[&str]) -> TestApp {
    spawn_configured(None, args).await
}

async fn spawn_configured(mailer: Option<Arc<dyn Mailer>>, args: &[&str]) -> TestApp {
    let launch = Launch {
        alive: Arc::new(()),
        database_url: fresh_database().await,
        master_key: MasterKey::generate().to_base64(),
        signing_key: signing_key_to_base64(&SigningKey::generate(&mut rand::rngs::OsRng)),
        clock: Arc::new(ManualClock::default()),
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    start(launch, mailer).await
}

/// What every process of one test app shares.
#[derive(Clone)]
struct Launch {
    /// Counts the app's processes still referenced by the test.
    alive: Arc<()>,
    database_url: String,
    master_key: String,
    signing_key: String,
    clock: Arc<ManualClock>,
    args: Vec<String>,
}

async fn start(launch: Launch, mailer: Option<Arc<dyn Mailer>>) -> TestApp {
    try_start(launch, mailer)
        .await
        .expect("the application starts")
}

async fn try_start(launch: Launch, mailer: Option<Arc<dyn Mailer>>) -> anyhow::Result<TestApp> {
    let mail_dir = std::env::temp_dir().join(format!("warden-mail-{}", Uuid::new_v4()));
    let mail_dir_text = mail_dir.display().to_string();
    let mut args = vec![
        "--database-url",
        &launch.database_url,
        "--addr",
        "127.0.0.1:0",
        "--mail-dir",
        &mail_dir_text,
        "--db-connections",
        "8",
    ];
    if !launch.args.iter().any(|a| a == "--public-url") {
        args.extend(["--public-url", "https://app.warden.test"]);
    }
    // Tests log in far more often than one client may; the throttle has tests of its own.
    if !launch
        .args
        .iter()
        .any(|a| a == "--client-attempts-per-minute")
    {
        args.extend(["--client-attempts-per-minute", "1000000"]);
    }
    args.extend(launch.args.iter().map(String::as_str));
    let settings = settings_from(&args);
    let app = Application::build(
        &settings,
        Overrides {
            clock: launch.clock.clone(),
            master_key: Some(MasterKey::from_base64(&launch.master_key).expect("valid key")),
            mailer,
            signing_key: Some(signing_key_from_base64(&launch.signing_key).expect("valid key")),
        },
    )
    .await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let server = app.handle();
    tokio::spawn(app.run_until_stopped());
    Ok(TestApp {
        address,
        client: reqwest::Client::builder()
            .user_agent("warden-tests/1.0")
            .build()
            .expect("client"),
        pool: PgPool::connect(&launch.database_url).await.expect("pool"),
        clock: launch.clock.clone(),
        mail_dir,
        state,
        database_url: launch.database_url.clone(),
        signing_key: launch.signing_key.clone(),
        launch,
        server,
    })
}

/// The server of a finished test lives on in actix's worker threads, but its projector tasks died
/// with the test's runtime, possibly mid-batch: their transactions would sit open (holding every
/// other test's horizon back) until the idle-in-transaction timeout. The last process of an app
/// to go closes its database to new connections and ends every session on it instead.
impl Drop for TestApp {
    fn drop(&mut self) {
        if Arc::strong_count(&self.launch.alive) > 1 {
            return;
        }
        let url = self.database_url.clone();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Some((base, name)) = url.rsplit_once('/') else {
                    return;
                };
                if let Ok(mut admin) = PgConnection::connect(&format!("{base}/postgres")).await {
                    // Nothing of this app may start a new batch after the sessions end.
                    let _ = sqlx::query(&format!(
                        "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false"
                    ))
                    .execute(&mut admin)
                    .await;
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE datname = $1 AND pid <> pg_backend_pid()",
                    )
                    .bind(name)
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}

impl TestApp {
    /// A second Warden process on the same database, key and clock.
    pub async fn spawn_sibling(&self) -> TestApp {
        start(self.launch.clone(), None).await
    }

    /// Another process on the same database and clock after a signing-key rotation: it signs
    /// checkpoints with `signing_key` and trusts the `retired` public keys too.
    pub async fn spawn_rotated(&self, signing_key: &str, retired: &[&str]) -> TestApp {
        let mut launch = self.launch.clone();
        launch.signing_key = signing_key.to_string();
        launch.args.push("--retired-signing-keys".into());
        launch.args.push(retired.join(","));
        start(launch, None).await
    }

    /// Another process on the same database and clock that seals with the master key `master`
    /// and opens with the `others` too; an error when it refuses to start.
    pub async fn spawn_with_master(
        &self,
        master: &str,
        others: &[&str],
    ) -> anyhow::Result<TestApp> {
        let mut launch = self.launch.clone();
        launch.master_key = master.to_string();
        if !others.is_empty() {
            launch.args.push("--other-master-keys".into());
            launch.args.push(others.join(","));
        }
        try_start(launch, None).await
    }

    /// The master key this app's first process was started with.
    pub fn master_key(&self) -> &str {
        &self.launch.master_key
    }

    /// Waits until every transaction that wrote has ended and every view of this process (the
    /// audit chain and any publisher included) reflects the newest event.
    pub async fn caught_up(&self) {
        settle(&self.pool).await;
        let head = self
            .state
            .app
            .commands
            .head()
            .await
            .expect("head")
            .expect("events");
        assert!(
            self.state
                .projections
                .wait_for(head, std::time::Duration::from_secs(60))
                .await,
            "every view caught up"
        );
    }

    /// Stops this process's server and its projectors, as a shutdown would.
    pub async fn stop(&self) {
        self.server.stop(false).await;
    }

    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use warden_aggregates::shared::Clock;
        self.clock.now()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Response {
        let mut request = self.client.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn put(&self, path: &str, body: Value, token: &str) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn register(&self, email: &str) -> Value {
        let response = self
            .api()
            .register(&crate::client::Register {
                email,
                password: PASSWORD,
                display_name: Some("Ada"),
            })
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }

    pub async fn log_in_with(&self, email: &str, password: &str) -> Response {
        self.api()
            .log_in(&crate::client::LogIn {
                email,
                password,
                device_name: Some("test laptop"),
            })
            .await
    }

    /// Logs in with the right password and returns the session token.
    pub async fn log_in(&self, email: &str) -> String {
        let response = self.log_in_with(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        body["token"].as_str().expect("token").to_string()
    }

    /// Registers `email` and logs in once.
    pub async fn signed_up(&self, email: &str) -> String {
        self.register(email).await;
        self.log_in(email).await
    }

    /// Makes `email` (registered or not) a platform admin, as `warden admin create` does, and
    /// returns a session of it.
    pub async fn admin(&self, email: &str) -> String {
        let email_parsed = warden_aggregates::shared::Email::parse(email).expect("email");
        self.state
            .app
            .admin
            .create_admin(email_parsed, secrecy::SecretString::from(PASSWORD))
            .await
            .expect("admin created");
        self.log_in(email).await
    }

    /// The messages mailed once the requests so far have done their work and the outbox has
    /// delivered what they decided.
    pub async fn mails(&self) -> Vec<String> {
        self.state.app.accounts.background().idle().await;
        // A pass reads only below the horizon, which another test's transaction may hold back:
        // first let the horizon pass the newest event, so the passes below reach it.
        settle(&self.pool).await;
        // The outbox's own task may hold a message's claim: it is waited for, not raced.
        for _ in 0..500 {
            if self.state.projections.catch_up_all().await.is_ok() {
                return self.mails_so_far();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the outbox did not deliver within 10 s");
    }

    /// The mails with this subject, once the outbox has delivered what was decided.
    pub async fn mails_about(&self, subject: &str) -> Vec<String> {
        let line = format!("Subject: {subject}\r\n");
        self.mails()
            .await
            .into_iter()
            .filter(|mail| mail.contains(&line))
            .collect()
    }

    /// The reset links mailed so far, oldest first.
    pub async fn reset_mails(&self) -> Vec<String> {
        self.mails_about("Reset your Warden password").await
    }

    /// The messages written to the mail directory so far, without waiting for the outbox.
    pub fn mails_so_far(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.mail_dir) else {
            return Vec::new();
        };
        let mut mails: Vec<(PathBuf, String)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| {
                let text = std::fs::read_to_string(&p).expect("readable mail");
                (p, text)
            })
            .collect();
        mails.sort();
        mails.into_iter().map(|(_, text)| text).collect()
    }
}

/// Sends `requests` at once and answers their statuses, in order.
pub async fn statuses_of<F>(requests: impl IntoIterator<Item = F>) -> Vec<StatusCode>
where
    F: std::future::Future<Output = Response>,
{
    futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect()
}

/// How many of `statuses` are `status`.
pub fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Asserts a problem response's status and `code`, and returns its body.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem json");
    assert_eq!(body["code"], code, "problem code in {body}");
    assert_eq!(body["status"], status.as_u16());
    body
}

/// The reset token in a mailed link.
pub fn reset_token_in(mail: &str) -> String {
    // The body is quoted-printable (the link line is long): undo soft breaks and `=3D`.
    let unfolded = mail
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = unfolded.find("token=").expect("a token in the link") + "token=".len();
    unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// Every row of every table, as JSON lines: what a database dump would hold.
pub async fn dump_database(pool: &PgPool) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut dump = String::new();
    for table in &tables {
        let rows: Vec<Value> =
            sqlx::query_scalar(&format!("SELECT to_jsonb(t) FROM \"{table}\" t"))
                .fetch_all(pool)
                .await
                .expect("rows");
        for row in rows {
            dump.push_str(&row.to_string());
            dump.push('\n');
        }
    }
    dump
}

/// The newest event's place in commit order.
pub async fn head(pool: &PgPool) -> Cursor {
    let (tx, pos): (String, i64) = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM events
         ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .expect("head");
    Cursor {
        transaction_id: tx.parse().expect("xid"),
        global_position: pos,
    }
}

/// Waits until every transaction that wrote to the log has ended *and* no transaction elsewhere
/// on the server (other tests share it) holds the horizon below the newest event.
///
/// Up to a minute: any long writing transaction on the server holds the horizon, such as the one
/// `tests/horizon` keeps open for 20 s on purpose (a binary of its own, but the server may be
/// shared with another run).
pub async fn settle(pool: &PgPool) {
    let head = head(pool).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let xmin: String =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(pool)
                .await
                .expect("xmin");
        if xmin.parse::<u64>().expect("xid") > head.transaction_id {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the horizon did not pass the newest event");
}
