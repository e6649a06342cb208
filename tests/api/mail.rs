//! Mail through a real SMTP server on loopback (aiosmtpd, installed by scripts/test).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use warden::adapters::mail::SmtpMailer;

use crate::faults::Server;
use crate::helpers::{fresh_database, reset_token_in, spawn_with_mailer, PASSWORD};

pub struct SmtpSink {
    child: Child,
    pub dir: std::path::PathBuf,
    port: u16,
}

impl SmtpSink {
    /// The messages received so far.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| std::fs::read_to_string(e.path()).expect("readable"))
            .collect()
    }
}

fn smtp_mailer(port: u16) -> SmtpMailer {
    SmtpMailer::new(
        &format!("smtp://127.0.0.1:{port}"),
        "Warden <no-reply@warden.test>".parse().expect("mailbox"),
    )
    .expect("mailer")
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn smtp_sink() -> SmtpSink {
    smtp_sink_on(free_port()).await
}

/// An SMTP server on `port`, writing what it receives into a directory of its own.
pub async fn smtp_sink_on(port: u16) -> SmtpSink {
    let dir = std::env::temp_dir().join(format!("warden-smtp-{}", Uuid::new_v4()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
    let sink = SmtpSink {
        child: Command::new("python3")
            .args([script, "--port", &port.to_string(), "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs the SMTP sink"),
        dir,
        port,
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return sink;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the SMTP sink did not start (is aiosmtpd installed? scripts/test installs it)");
}

#[tokio::test]
async fn a_reset_link_travels_through_a_real_smtp_server() {
    let sink = smtp_sink().await;
    let app = spawn_with_mailer(Arc::new(smtp_mailer(sink.port))).await;
    app.register("smtp@example.com").await;
    let response = app
        .post(
            "/v1/password-resets",
            json!({ "email": "smtp@example.com" }),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.mails().await;

    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert!(message.contains("smtp@example.com"));
    assert!(message.contains("Subject: Reset your Warden password"));
    let token = reset_token_in(message);
    let confirm = app
        .post(
            "/v1/password-resets/confirm",
            json!({ "token": token, "new_password": "delivered by smtp today" }),
            None,
        )
        .await;
    assert_eq!(confirm.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_reset_asked_for_while_the_mail_server_is_down_arrives_once_it_is_back() {
    let port = free_port();
    let app = spawn_with_mailer(Arc::new(smtp_mailer(port))).await;
    app.register("patient@example.com").await;
    let response = app
        .post(
            "/v1/password-resets",
            json!({ "email": "patient@example.com" }),
            None,
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "nothing tells the caller"
    );
    app.state.app.accounts.background().idle().await;
    // The outbox tries, fails and keeps the message while nothing listens on the port.
    let mut tries = 0;
    for _ in 0..100 {
        tries = attempts(&app).await;
        if tries >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tries >= 2,
        "the outbox retries while the server is down ({tries})"
    );

    let sink = smtp_sink_on(port).await;
    let mut messages = Vec::new();
    for _ in 0..200 {
        messages = sink.messages();
        if !messages.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        messages.len(),
        1,
        "the mail arrives once the server is back"
    );
    assert!(messages[0].contains("Message-ID: <"), "{}", messages[0]);
    let confirm = app
        .post(
            "/v1/password-resets/confirm",
            json!({ "token": reset_token_in(&messages[0]), "new_password": "it was worth the wait" }),
            None,
        )
        .await;
    assert_eq!(confirm.status(), StatusCode::NO_CONTENT, "its link works");
    let (outcome, error): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT outcome, last_error FROM mail_deliveries")
            .fetch_one(&app.pool)
            .await
            .expect("one delivery");
    assert_eq!(outcome.as_deref(), Some("sent"));
    assert!(
        !error.unwrap_or_default().contains("patient@example.com"),
        "no address in the delivery record"
    );
}

async fn attempts(app: &crate::helpers::TestApp) -> i32 {
    sqlx::query_scalar("SELECT coalesce(max(attempts), 0) FROM mail_deliveries")
        .fetch_one(&app.pool)
        .await
        .expect("attempts")
}

#[tokio::test]
async fn a_reset_committed_before_a_crash_is_mailed_once_after_the_restart() {
    let port = free_port();
    let mut server = Server::new(fresh_database().await);
    server
        .env
        .push(("WARDEN_SMTP_URL".into(), format!("smtp://127.0.0.1:{port}")));
    server.start().await;
    let client = reqwest::Client::new();
    let email = "crash@example.com";
    let registered = client
        .post(server.url("/v1/accounts"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("registered");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let asked = client
        .post(server.url("/v1/password-resets"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .expect("asked");
    assert_eq!(asked.status(), StatusCode::ACCEPTED);

    // The request has committed, and the mail server is down: nothing was delivered, though the
    // outbox has tried.
    let pool = PgPool::connect(&server.database_url).await.expect("pool");
    let mut tried = 0;
    for _ in 0..400 {
        tried =
            sqlx::query_scalar::<_, i32>("SELECT coalesce(max(attempts), 0) FROM mail_deliveries")
                .fetch_one(&pool)
                .await
                .expect("attempts");
        if tried > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(tried > 0, "the outbox tries the mail server");
    server.kill().await;
    // As if the process had been killed in the middle of handing the message over: its claim
    // would hold the message for an hour if nobody noticed that its holder is gone.
    let held = sqlx::query(
        "UPDATE mail_deliveries SET claimed_until = now() + interval '1 hour'
         WHERE claimed_by LIKE 'warden-%' AND finished_at IS NULL",
    )
    .execute(&pool)
    .await
    .expect("claim held");
    assert_eq!(held.rows_affected(), 1, "the dead process's claim names it");

    let sink = smtp_sink_on(port).await;
    server.start().await;
    let mut messages = Vec::new();
    for _ in 0..300 {
        messages = sink.messages();
        if !messages.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(messages.len(), 1, "the restarted process mails it");
    // Give a second delivery every chance to happen.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.messages().len(), 1, "and only once");
    let confirm = client
        .post(server.url("/v1/password-resets/confirm"))
        .json(&json!({
            "token": reset_token_in(&messages[0]),
            "new_password": "mailed after the crash",
        }))
        .send()
        .await
        .expect("confirmed");
    assert_eq!(confirm.status(), StatusCode::NO_CONTENT);
}

/// Every process runs the outbox over the same log: a claim per message keeps two from sending
/// it twice (without the claim, each process mails each message).
#[tokio::test]
async fn two_processes_mail_each_message_once() {
    let first = crate::helpers::spawn_app().await;
    let second = first.spawn_sibling().await;
    let count = 8;
    for i in 0..count {
        let email = format!("twice{i}@example.com");
        first.register(&email).await;
        let asked = second
            .post("/v1/password-resets", json!({ "email": email }), None)
            .await;
        assert_eq!(asked.status(), StatusCode::ACCEPTED);
    }
    first.mails().await;
    second.mails().await;
    let mut ids: Vec<String> = first
        .mails_so_far()
        .into_iter()
        .chain(second.mails_so_far())
        .filter_map(|mail| {
            mail.lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(ids.len(), count, "each reset mailed by one process only");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "one Message-ID per message");
    let delivered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM mail_deliveries WHERE outcome = 'sent'")
            .fetch_one(&first.pool)
            .await
            .expect("count");
    assert_eq!(delivered, count as i64);
}

#[tokio::test]
async fn a_link_that_ran_out_while_the_mail_server_was_away_is_not_sent() {
    let port = free_port();
    let app = spawn_with_mailer(Arc::new(smtp_mailer(port))).await;
    app.register("late@example.com").await;
    let asked = app
        .post(
            "/v1/password-resets",
            json!({ "email": "late@example.com" }),
            None,
        )
        .await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    app.state.app.accounts.background().idle().await;
    for _ in 0..100 {
        if attempts(&app).await >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(attempts(&app).await >= 1, "the outbox tried");
    app.clock.advance(chrono::Duration::minutes(31));

    let sink = smtp_sink_on(port).await;
    let mut outcome: Option<String> = None;
    for _ in 0..200 {
        outcome = sqlx::query_scalar("SELECT outcome FROM mail_deliveries")
            .fetch_one(&app.pool)
            .await
            .expect("the delivery record");
        if outcome.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        outcome
            .as_deref()
            .is_some_and(|o| o.starts_with("not sent")),
        "{outcome:?}"
    );
    assert!(sink.messages().is_empty(), "a dead link is not mailed");
}
