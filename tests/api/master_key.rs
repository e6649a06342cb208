//! Rotating the master key (docs/adr/0020) on running processes, in the three steps of
//! docs/operations.md; afterwards the new key alone opens everything: personal data, TOTP
//! secrets, the email index, erasure, replay and the audit chain.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::process::Command;

use crate::helpers::{assert_problem, spawn_app, TestApp, PASSWORD};
use crate::mfa::{challenge, code, second_step, totp_account};

/// Runs the `warden` binary on the app's database with `master` (and the `others`) configured.
async fn warden(
    args: &[&str],
    app: &TestApp,
    master: Option<(&str, &str)>,
) -> (bool, Value, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("WARDEN_LOG", "warn");
    if let Some((key, others)) = master {
        command
            .env("WARDEN_MASTER_KEY", key)
            .env("WARDEN_OTHER_MASTER_KEYS", others);
    }
    let output = command.output().await.expect("warden runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    (
        output.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

async fn server_key_sealed_by(app: &TestApp) -> String {
    sqlx::query_scalar("SELECT sealed_by FROM server_keys WHERE name = 'derivation'")
        .fetch_one(&app.pool)
        .await
        .expect("a server key")
}

async fn email_of(app: &TestApp, email: &str) -> Value {
    let session = app.log_in(email).await;
    let me: Value = app.api_as(&session).me().await.json().await.expect("json");
    me["email"].clone()
}

#[tokio::test]
async fn after_a_master_key_rotation_the_new_key_alone_opens_everything() {
    let app = spawn_app().await;
    let old = app.master_key().to_string();
    let (_, enrolled) = totp_account(&app, "totp@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    let bob: Value = app.api_as(&bob).me().await.json().await.expect("json");
    let bob_id = bob["id"].as_str().expect("bob's id").to_string();
    let admin = app.admin("dpo@example.com").await;
    let old_id = server_key_sealed_by(&app).await;

    let (ok, fresh, stderr) = warden(&["keys", "new-master"], &app, None).await;
    assert!(ok, "{stderr}");
    let new = fresh["master_key"].as_str().expect("a key");
    let new_id = fresh["key_id"].as_str().expect("its id");
    assert_ne!(new_id, old_id);

    // Step 1: the processes learn the new key and still seal with the old one.
    let learning = app.spawn_with_master(&old, &[new]).await.expect("starts");
    assert_eq!(server_key_sealed_by(&app).await, old_id);
    // Step 2: the new key seals; the server key is sealed again under it at once, and a process
    // still on step 1 opens what the new key sealed.
    let sealing = app.spawn_with_master(new, &[&old]).await.expect("starts");
    assert_eq!(server_key_sealed_by(&app).await, new_id);
    sealing.signed_up("carol@example.com").await;
    assert_eq!(
        email_of(&learning, "carol@example.com").await,
        "carol@example.com"
    );

    // Step 3: every data key sealed again, while the processes serve.
    let (ok, report, stderr) =
        warden(&["keys", "rotate-master"], &app, Some((new, old.as_str()))).await;
    assert!(ok, "{report} {stderr}");
    assert_eq!(report["key_id"], new_id, "{report}");
    assert_eq!(
        report["resealed"]["data_keys"],
        json!({ old_id.as_str(): 3 }),
        "{report}"
    );
    assert_eq!(
        report["after"]["data_keys"],
        json!({ new_id: 4 }),
        "{report}"
    );
    assert_eq!(report["after"]["server_key"], new_id, "{report}");

    // A process that never learnt the new key refuses to start, and says what it lacks.
    let refused = app
        .spawn_with_master(&old, &[])
        .await
        .err()
        .expect("refused");
    let refused = format!("{refused:#}");
    assert!(
        refused.contains(new_id) && refused.contains("WARDEN_OTHER_MASTER_KEYS"),
        "{refused}"
    );

    // The new key alone: personal data, the email index, TOTP secrets sealed before.
    let alone = app.spawn_with_master(new, &[]).await.expect("starts");
    for email in ["bob@example.com", "carol@example.com", "dpo@example.com"] {
        assert_eq!(email_of(&alone, email).await, email);
    }
    let step = challenge(&alone, "totp@example.com").await;
    let totp = code(&enrolled.secret, alone.clock_now());
    let signed_in = second_step(&alone, &step, "totp", &totp).await;
    assert_eq!(signed_in.status(), StatusCode::CREATED);

    // Erasure still shreds, replay still rebuilds every view, the chain still verifies.
    let erased = alone
        .post(
            &format!("/v1/admin/accounts/{bob_id}/erase"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    let key: Option<String> =
        sqlx::query_scalar("SELECT sealed_key FROM account_keys WHERE account_id = $1::uuid")
            .bind(&bob_id)
            .fetch_one(&app.pool)
            .await
            .expect("row");
    assert_eq!(key, None, "bob's data key is destroyed");
    let login = alone.log_in_with("bob@example.com", PASSWORD).await;
    assert_problem(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    alone.caught_up().await;
    let verified: Value = alone
        .get("/v1/audit/verify", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(verified["ok"], true, "{verified}");
    let (ok, replayed, stderr) = warden(&["replay"], &app, None).await;
    assert!(ok, "{replayed} {stderr}");
    assert_eq!(replayed["identical"], true, "{replayed}");
}
