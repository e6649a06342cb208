//! Passkeys as a person meets them in a real browser: Debian's Chromium, driven by
//! playwright-core, with Chromium's own WebAuthn stack and virtual authenticator
//! (tests/browser/drive.mjs). Screenshots land in target/screenshots/passkeys/.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::process::Command;

use crate::helpers::{spawn_with_args, PASSWORD};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn a_person_adds_a_passkey_in_chromium_and_signs_in_with_it_alone_under_a_mfa_policy() {
    let page_port = free_port();
    let origin = format!("http://localhost:{page_port}");
    let app = spawn_with_args(&["--public-url", &origin]).await;
    // Ada holds a workspace that requires MFA; Bob is a member with a password only.
    let ada = app.signed_up("ada@example.com").await;
    app.signed_up("bob@example.com").await;
    let workspace: Value = app
        .post(
            "/v1/workspaces",
            json!({ "name": "Support desk" }),
            Some(&ada),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = workspace["id"].as_str().expect("workspace id");
    let added = app
        .post(
            &format!("/v1/workspaces/{id}/members"),
            json!({ "email": "bob@example.com", "role": "agent" }),
            Some(&ada),
        )
        .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let policy = app
        .put(
            &format!("/v1/workspaces/{id}/mfa-policy"),
            json!({ "required": true }),
            &ada,
        )
        .await;
    assert!(policy.status().is_success(), "{}", policy.status());

    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots/passkeys");
    let output = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/drive.mjs"
        ))
        .env("PAGE_PORT", page_port.to_string())
        .env("WARDEN_URL", &app.address)
        .env("EMAIL", "ada@example.com")
        .env("PASSWORD", PASSWORD)
        .env("SHOTS", shots)
        .output()
        .await
        .expect("node runs tests/browser/drive.mjs (npm ci in tests/browser)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let page: Value = serde_json::from_str(stdout.trim()).expect("the driver's JSON");

    assert_eq!(
        page["password_sign_in"],
        "Your workspace requires a second factor: add a passkey to continue.",
        "{page}"
    );
    assert_eq!(
        page["passkey_added"], "Passkey “This laptop” added.",
        "{page}"
    );
    assert_eq!(page["resident_credentials"], 1, "discoverable: {page}");
    assert_eq!(
        page["passkey_sign_in"], "Signed in with your passkey (session method: passkey).",
        "{page}"
    );
    let refused = page["unverified_sign_in"].as_str().unwrap_or_default();
    assert!(
        refused.starts_with("Passkey sign-in did not complete: NotAllowedError"),
        "{page}"
    );

    // Under the policy a password alone is challenged (Ada) or only enrolls (Bob).
    let ada_login: Value = app
        .log_in_with("ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ada_login["status"], "mfa_required", "{ada_login}");
    assert_eq!(ada_login["methods"], json!(["passkey"]));
    let bob_login: Value = app
        .log_in_with("bob@example.com", PASSWORD)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        bob_login["status"], "mfa_enrollment_required",
        "{bob_login}"
    );
}
