//! The event stream published to a real NATS JetStream server (`nats-server -js` on loopback).

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;
use warden::adapters::nats::stream_name;

use crate::events::ids_in_commit_order;
use crate::helpers::settle;
use crate::helpers::{spawn_with_args, TestApp, PASSWORD};

fn nats_url() -> String {
    std::env::var("WARDEN_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn publisher_at(app: &TestApp) -> (String, i64) {
    sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM projector_checkpoints
         WHERE name = 'nats_publisher'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("the publisher has a checkpoint")
}

/// Waits until the publisher's checkpoint stands at the newest event.
async fn published_everything(app: &TestApp) {
    settle(&app.pool).await;
    let head = app
        .state
        .app
        .commands
        .head()
        .await
        .expect("head")
        .expect("events");
    for _ in 0..1000 {
        let (tx, pos) = publisher_at(app).await;
        // At the head, or at the horizon past it once a pass found nothing more.
        let at = (tx.parse::<u64>().unwrap_or(0), pos);
        if at >= (head.transaction_id, head.global_position) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the publisher did not reach the newest event");
}

#[tokio::test]
async fn every_event_reaches_jetstream_once_in_commit_order_even_when_published_again() {
    let prefix = format!("wardentest{}.events", Uuid::new_v4().simple());
    let app = spawn_with_args(&["--nats-url", &nats_url(), "--nats-subject", &prefix]).await;
    let email = "published@example.com";
    let session = app.signed_up(email).await;
    app.log_in_with(email, "not the password").await;
    published_everything(&app).await;

    let client = async_nats::connect(nats_url()).await.expect("NATS answers");
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream
        .get_stream(stream_name(&prefix))
        .await
        .expect("Warden created the stream");
    let expected = ids_in_commit_order(&app).await;
    let stored = stream.info().await.expect("info").state.messages;
    assert_eq!(stored, expected.len() as u64, "one message per event");

    let mut ids = Vec::new();
    let mut bodies = String::new();
    for sequence in 1..=stored {
        let message = stream.get_raw_message(sequence).await.expect("message");
        let event: Value = serde_json::from_slice(&message.payload).expect("json");
        let id = event["id"].as_str().expect("id").to_string();
        assert_eq!(
            message.subject.as_str(),
            format!("{prefix}.{}", event["type"].as_str().expect("type"))
        );
        assert_eq!(
            message
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|v| v.as_str().to_string()),
            Some(id.clone())
        );
        if event["type"] == "account.registered" {
            assert_eq!(
                event["data"]["email"], "[sealed]",
                "no personal data in a broker"
            );
            assert_eq!(event["data"]["password_hash"], "[redacted]");
        }
        ids.push(id);
        bodies.push_str(std::str::from_utf8(&message.payload).expect("utf-8"));
    }
    assert_eq!(ids, expected, "commit order");
    for secret in [PASSWORD, session.as_str(), email, "$argon2id$"] {
        assert!(!bodies.contains(secret), "{secret} reached NATS");
    }

    // As after a crash between the acknowledgement and the checkpoint: everything is published
    // again, and JetStream keeps one copy of each.
    sqlx::query(
        "UPDATE projector_checkpoints SET transaction_id = '0', global_position = 0
         WHERE name = 'nats_publisher'",
    )
    .execute(&app.pool)
    .await
    .expect("rewound");
    app.state.projections.wake();
    published_everything(&app).await;
    let again = stream.info().await.expect("info").state.messages;
    assert_eq!(again, stored, "repeats were dropped by message id");

    jetstream
        .delete_stream(stream_name(&prefix))
        .await
        .expect("cleaned up");
}
