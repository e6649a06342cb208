//! Tamper evidence (the audit chain, online and offline) and replay of every view from the log.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::process::Command;
use warden_projections::audit_chain::{self, canonical_event, hash_canonical, link};
use warden_projections::replay::replay;
use warden_projections::{Cursor, StoredEvent};

use crate::helpers::{assert_problem, spawn_app, TestApp, PASSWORD};

/// An app with a little of everything in its log, every view caught up, and an admin session.
async fn busy_app() -> (TestApp, String) {
    let app = spawn_app().await;
    let user = app.signed_up("chained@example.com").await;
    app.log_in_with("chained@example.com", "not the password")
        .await;
    app.post(
        "/v1/me/tokens",
        json!({ "name": "ci", "password": PASSWORD }),
        Some(&user),
    )
    .await;
    let workspace: Value = app
        .post("/v1/workspaces", json!({ "name": "Chained" }), Some(&user))
        .await
        .json()
        .await
        .expect("json");
    let admin = app.admin("auditor@example.com").await;
    app.post(
        &format!(
            "/v1/workspaces/{}/members",
            workspace["id"].as_str().expect("id")
        ),
        json!({ "email": "auditor@example.com", "role": "supervisor" }),
        Some(&user),
    )
    .await;
    app.caught_up().await;
    (app, admin)
}

async fn verify(app: &TestApp, token: &str) -> Value {
    let response = app.api_as(token).verify_chain().await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

/// Positions of the stored events in commit order.
async fn positions(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT transaction_id::text || '.' || global_position FROM events
         ORDER BY events.transaction_id, events.global_position",
    )
    .fetch_all(&app.pool)
    .await
    .expect("positions")
}

async fn event_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count")
}

fn split(position: &str) -> (String, i64) {
    let (tx, pos) = position.split_once('.').expect("position");
    (tx.to_string(), pos.parse().expect("number"))
}

#[tokio::test]
async fn an_untouched_log_verifies_and_only_auditors_may_ask() {
    let (app, admin) = busy_app().await;
    let user = app.log_in("chained@example.com").await;
    assert_problem(
        app.api_as(&user).verify_chain().await,
        StatusCode::FORBIDDEN,
        "auditor_required",
    )
    .await;
    app.caught_up().await;
    let report = verify(&app, &admin).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["events_checked"], event_count(&app).await);
    let last = positions(&app).await.pop().expect("events");
    assert_eq!(report["head"]["position"], last.as_str());
    assert!(report.get("first_bad_position").is_none_or(Value::is_null));
}

/// Runs `sql` (binding the transaction id and position of the event at `index` in commit order)
/// against the log of a busy app, then checks that verification fails first at that event.
async fn tampering_is_found_at(index: usize, sql: &str) {
    let (app, admin) = busy_app().await;
    let target = positions(&app).await[index].clone();
    let (tx, pos) = split(&target);
    sqlx::query(sql)
        .bind(&tx)
        .bind(pos)
        .execute(&app.pool)
        .await
        .expect("tampered");
    let report = verify(&app, &admin).await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad_position"], target.as_str(), "{report}");
}

#[tokio::test]
async fn a_changed_payload_is_found_at_its_position() {
    tampering_is_found_at(
        3,
        "UPDATE events SET payload = jsonb_set(payload, '{x}', '\"forged\"')
         WHERE transaction_id = $1::text::xid8 AND global_position = $2",
    )
    .await;
}

#[tokio::test]
async fn a_deleted_event_is_found_at_its_position() {
    tampering_is_found_at(
        2,
        "DELETE FROM events WHERE transaction_id = $1::text::xid8 AND global_position = $2",
    )
    .await;
}

#[tokio::test]
async fn reordered_events_are_found_at_the_first_moved_one() {
    let (app, admin) = busy_app().await;
    let all = positions(&app).await;
    let (first, second) = (all[1].clone(), all[4].clone());
    let ((tx1, pos1), (tx2, pos2)) = (split(&first), split(&second));
    assert_ne!(tx1, tx2, "two transactions");
    // Swap the two events' places in commit order.
    sqlx::query(
        "UPDATE events SET transaction_id = CASE global_position WHEN $2 THEN $3::text::xid8
                                                                 ELSE $1::text::xid8 END
         WHERE global_position IN ($2, $4)",
    )
    .bind(&tx1)
    .bind(pos1)
    .bind(&tx2)
    .bind(pos2)
    .execute(&app.pool)
    .await
    .expect("tampered");
    let report = verify(&app, &admin).await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad_position"], first.as_str(), "{report}");
}

#[tokio::test]
async fn an_event_slipped_in_behind_the_chain_is_found() {
    let (app, admin) = busy_app().await;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, transaction_id)
         VALUES ('account', 'forged', 1, 'account.admin.granted', '1.0', '{}', '{}', '3')",
    )
    .execute(&app.pool)
    .await
    .expect("forged");
    let report = verify(&app, &admin).await;
    assert_eq!(report["ok"], false);
    assert!(
        report["first_bad_position"]
            .as_str()
            .expect("position")
            .starts_with("3."),
        "{report}"
    );
}

#[tokio::test]
async fn a_chain_rewritten_to_match_a_change_is_caught_by_the_signed_checkpoint() {
    let (app, admin) = busy_app().await;
    let key = warden::settings::signing_key_from_base64(&app.signing_key).expect("key");
    audit_chain::sign_head(&app.pool, &key)
        .await
        .expect("signed");
    // Change the newest event and recompute its chain entry as a careful forger would.
    let last = positions(&app).await.pop().expect("events");
    let (tx, pos) = split(&last);
    let row: (String, String, i64, String, String, Value, Value) = sqlx::query_as(
        "UPDATE events SET payload = jsonb_set(payload, '{x}', '\"forged\"')
         WHERE transaction_id = $1::text::xid8 AND global_position = $2
         RETURNING aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                   metadata",
    )
    .bind(&tx)
    .bind(pos)
    .fetch_one(&app.pool)
    .await
    .expect("tampered");
    let event = StoredEvent {
        cursor: last.parse::<Cursor>().expect("cursor"),
        aggregate_type: row.0,
        aggregate_id: row.1,
        sequence: row.2,
        event_type: row.3,
        event_version: row.4,
        payload: row.5.into(),
        metadata: row.6.into(),
    };
    let previous: Vec<u8> = sqlx::query_scalar(
        "SELECT chain_hash FROM audit_chain_v1 ORDER BY n DESC OFFSET 1 LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .expect("previous");
    let event_hash = hash_canonical(&canonical_event(&event));
    let chain_hash = link(&previous.try_into().expect("32 bytes"), &event_hash);
    sqlx::query(
        "UPDATE audit_chain_v1 SET event_hash = $1, chain_hash = $2
         WHERE transaction_id = $3::text::xid8 AND global_position = $4",
    )
    .bind(&event_hash[..])
    .bind(&chain_hash[..])
    .bind(&tx)
    .bind(pos)
    .execute(&app.pool)
    .await
    .expect("chain rewritten");

    let report = verify(&app, &admin).await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad_position"], last.as_str(), "{report}");
    assert_eq!(
        report["problem"],
        "the chain differs from what a checkpoint signed"
    );
}

/// Runs the `warden` binary without blocking the test's runtime: the app's projectors run on it,
/// and `warden replay` waits for the checkpoint locks they hold.
async fn warden(args: &[&str], app: &TestApp) -> (bool, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("WARDEN_SIGNING_KEY", &app.signing_key)
        .env("WARDEN_LOG", "warn")
        .output()
        .await
        .expect("warden runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        output.status.success(),
        report,
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[tokio::test]
async fn an_export_verifies_offline_with_the_public_key_and_a_flipped_byte_is_located() {
    let (app, admin) = busy_app().await;
    let dir = std::env::temp_dir().join(format!("warden-export-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = app.get("/v1/audit/public-key", None).await;
    assert_eq!(key.status(), StatusCode::OK);
    let key_path = dir.join("public-key.json");
    std::fs::write(&key_path, key.text().await.expect("body")).expect("written");
    let export = app.get("/v1/audit/chain", Some(&admin)).await;
    assert_eq!(export.status(), StatusCode::OK);
    let text = export.text().await.expect("body");
    let export_path = dir.join("chain.ndjson");
    std::fs::write(&export_path, &text).expect("written");

    // Nothing secret travels in an export, not even a password hash.
    assert!(!text.contains("$argon2"));
    assert!(!text.contains(PASSWORD));
    assert!(text
        .lines()
        .last()
        .expect("lines")
        .contains("\"kind\":\"checkpoint\""));

    let (ok, report, stderr) = warden(
        &[
            "verify",
            "--export",
            export_path.to_str().expect("path"),
            "--public-key",
            key_path.to_str().expect("path"),
        ],
        &app,
    )
    .await;
    assert!(ok, "{report} {stderr}");
    assert_eq!(report["events_checked"], event_count(&app).await);
    assert_eq!(report["signed_through"], report["head"]["position"]);

    // One byte changed in one event (a failure count 1 -> 2): that event's position is reported.
    let lines: Vec<&str> = text.lines().collect();
    let (index, line) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains("account.password.check_failed"))
        .expect("a failed login");
    let flipped = line.replacen(
        "\"consecutive_failures\":1",
        "\"consecutive_failures\":2",
        1,
    );
    assert_ne!(&flipped, line);
    let mut tampered = lines.clone();
    tampered[index] = &flipped;
    let tampered_path = dir.join("tampered.ndjson");
    std::fs::write(&tampered_path, tampered.join("\n")).expect("written");
    let (ok, report, _) = warden(
        &[
            "verify",
            "--export",
            tampered_path.to_str().expect("path"),
            "--public-key",
            key_path.to_str().expect("path"),
        ],
        &app,
    )
    .await;
    assert!(!ok);
    let entry: Value = serde_json::from_str(line).expect("json");
    assert_eq!(report["first_bad_position"], entry["event"]["position"]);

    // A key that did not sign it fails the export too.
    let other = warden_projections::SigningKey::generate(&mut rand::rngs::OsRng);
    let other_path = dir.join("other.key");
    std::fs::write(&other_path, warden::settings::signing_key_to_base64(&other)).expect("written");
    let other_public = dir.join("other.pub");
    {
        use base64::Engine;
        std::fs::write(
            &other_public,
            base64::engine::general_purpose::STANDARD.encode(other.verifying_key().as_bytes()),
        )
        .expect("written");
    }
    let (ok, report, _) = warden(
        &[
            "verify",
            "--export",
            export_path.to_str().expect("path"),
            "--public-key",
            other_public.to_str().expect("path"),
        ],
        &app,
    )
    .await;
    assert!(!ok, "{report}");

    // Online, from the command line, against the database; not on a terminal, its progress
    // comes as JSON lines, the last one at the end.
    let (ok, report, stderr) = warden(&["verify"], &app).await;
    assert!(ok, "{report} {stderr}");
    let last = progress_lines(&stderr, "verify")
        .pop()
        .expect("a progress line");
    assert_eq!(last["done"], report["events_checked"], "{stderr}");
    assert_eq!(last["done"], last["total"]);
}

/// The JSON progress lines of `stage` a command wrote to standard error.
fn progress_lines(stderr: &str, stage: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["stage"] == stage)
        .collect()
}

#[tokio::test]
async fn replay_rebuilds_every_view_identically_and_finds_a_changed_row() {
    let (app, _) = busy_app().await;
    let options = app.database_url.parse().expect("url");
    let projectors = warden_projections::all(None);
    let report = replay(&app.pool, options, &projectors)
        .await
        .expect("replayed");
    assert!(report.identical, "{report:?}");
    assert!(report.tables.len() >= 12);
    let history = report
        .tables
        .iter()
        .find(|t| t.table == "session_history_v1")
        .expect("session history compared");
    assert!(history.live_rows >= 2 && history.live_rows == history.rebuilt_rows);

    let (ok, cli, stderr) = warden(&["replay"], &app).await;
    assert!(ok, "{cli} {stderr}");
    assert_eq!(cli["identical"], true);
    // Each projector's rebuild says how far it came, ending at the log's end.
    for projector in ["session_history_v1", "audit_log_v1"] {
        let last = progress_lines(&stderr, &format!("replay {projector}"))
            .pop()
            .unwrap_or_else(|| panic!("progress of {projector}: {stderr}"));
        assert_eq!(last["done"], last["total"], "{stderr}");
        assert!(last["total"].as_u64() > Some(0));
    }

    sqlx::query(
        "UPDATE workspace_members_v1 SET role = 'account_holder' WHERE role = 'supervisor'",
    )
    .execute(&app.pool)
    .await
    .expect("view changed");
    let (ok, cli, stderr) = warden(&["replay"], &app).await;
    assert!(!ok);
    assert_eq!(cli["identical"], false, "{stderr}");
    assert!(
        stderr
            .contains("workspace_members_v1: 1 rows only in the live view, 1 only in the rebuild"),
        "{stderr}"
    );
}

#[tokio::test]
async fn after_a_signing_key_rotation_each_checkpoint_verifies_with_its_own_key() {
    let (app, admin) = busy_app().await;
    // The export signs the head: a checkpoint by the first key.
    let export = app.get("/v1/audit/chain", Some(&admin)).await;
    assert_eq!(export.status(), StatusCode::OK);
    let (ok, rotated, stderr) = warden(&["keys", "rotate-signing"], &app).await;
    assert!(ok, "{stderr}");
    let new_key = rotated["signing_key"].as_str().expect("a new key");
    let retired = rotated["retired_public_key"]
        .as_str()
        .expect("the key to retire");
    assert_ne!(rotated["key_id"], rotated["retired_key_id"]);

    let next = app.spawn_rotated(new_key, &[retired]).await;
    next.signed_up("after.rotation@example.com").await;
    next.caught_up().await;
    let dir = std::env::temp_dir().join(format!("warden-rotation-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let export = next.get("/v1/audit/chain", Some(&admin)).await;
    assert_eq!(export.status(), StatusCode::OK);
    let export_path = dir.join("chain.ndjson");
    std::fs::write(&export_path, export.text().await.expect("body")).expect("written");

    let keys: Value = next
        .get("/v1/audit/public-key", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(keys["key_id"], rotated["key_id"], "the new key signs now");
    let listed = keys["keys"].as_array().expect("keys");
    assert_eq!(listed.len(), 2, "{keys}");
    for key in listed {
        assert!(
            key["checkpoints"].as_i64() >= Some(1),
            "each key signed: {key}"
        );
    }
    let old = listed
        .iter()
        .find(|k| k["key_id"] == rotated["retired_key_id"])
        .expect("the retired key is listed");
    let new = listed
        .iter()
        .find(|k| k["key_id"] == rotated["key_id"])
        .expect("the new key is listed");
    assert_eq!(old["current"], json!(false));
    assert!(old["last_events"].as_i64() <= new["first_events"].as_i64());

    // Online: every checkpoint with its own key.
    let online = verify(&next, &admin).await;
    assert_eq!(online["ok"], json!(true), "{online}");
    // Offline: with the keys the endpoint lists, and not with the new key alone.
    let keys_path = dir.join("keys.json");
    std::fs::write(&keys_path, keys.to_string()).expect("written");
    let export_arg = export_path.to_str().expect("path");
    let (ok, report, stderr) = warden(
        &[
            "verify",
            "--export",
            export_arg,
            "--public-key",
            keys_path.to_str().expect("path"),
        ],
        &app,
    )
    .await;
    assert!(ok, "{report} {stderr}");
    assert!(
        report["checkpoints_verified"].as_i64() >= Some(2),
        "{report}"
    );
    let only_new = dir.join("new.pub");
    std::fs::write(&only_new, new["public_key"].as_str().expect("key")).expect("written");
    let (ok, report, _) = warden(
        &[
            "verify",
            "--export",
            export_arg,
            "--public-key",
            only_new.to_str().expect("path"),
        ],
        &app,
    )
    .await;
    assert!(!ok, "a retired key's checkpoints need that key: {report}");
    assert!(
        report["problem"]
            .as_str()
            .is_some_and(|p| p.contains("does not trust")),
        "{report}"
    );
}
