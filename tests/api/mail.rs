//! Mail through a real SMTP server on loopback (aiosmtpd, installed by scripts/test).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;
use warden::adapters::mail::SmtpMailer;

use crate::helpers::{reset_token_in, spawn_with_mailer};

struct SmtpSink {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn smtp_sink() -> SmtpSink {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
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
    let mailer = SmtpMailer::new(
        &format!("smtp://127.0.0.1:{}", sink.port),
        "Warden <no-reply@warden.test>".parse().expect("mailbox"),
    )
    .expect("mailer");
    let app = spawn_with_mailer(Arc::new(mailer)).await;
    app.register("smtp@example.com").await;
    let response = app
        .post(
            "/v1/password-resets",
            json!({ "email": "smtp@example.com" }),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let messages: Vec<String> = std::fs::read_dir(&sink.dir)
        .expect("the sink wrote messages")
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).expect("readable"))
        .collect();
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
