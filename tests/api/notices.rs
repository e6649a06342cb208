//! Security notices by mail: what happens to an account's security is mailed to its owner
//! through the outbox, each notice on until the owner turns it off.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp, PASSWORD};

/// The subjects of the mails sent to the account so far.
async fn subjects(app: &TestApp) -> Vec<String> {
    app.mails()
        .await
        .iter()
        .filter_map(|mail| {
            mail.lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .map(str::to_owned)
        })
        .collect()
}

async fn log_in_from(app: &TestApp, email: &str, agent: &str) -> StatusCode {
    app.client
        .post(app.url("/v1/sessions"))
        .header("user-agent", agent)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("sent")
        .status()
}

#[tokio::test]
async fn a_sign_in_from_a_new_device_is_mailed_and_a_known_one_is_not() {
    let app = spawn_app().await;
    let email = "traveller@example.com";
    app.register(email).await;
    assert_eq!(
        log_in_from(&app, email, "Laptop Browser/1.0").await,
        StatusCode::CREATED
    );
    assert!(
        subjects(&app).await.is_empty(),
        "the first device is not news"
    );
    assert_eq!(
        log_in_from(&app, email, "Laptop Browser/1.0").await,
        StatusCode::CREATED
    );
    assert!(subjects(&app).await.is_empty(), "nor is a known one");

    assert_eq!(
        log_in_from(&app, email, "Phone Browser/2.0").await,
        StatusCode::CREATED
    );
    let mails = app.mails().await;
    assert_eq!(mails.len(), 1, "one notice for the new device");
    assert!(mails[0].contains("Subject: New sign-in to your Warden account"));
    assert!(mails[0].contains("Phone Browser/2.0"), "{}", mails[0]);
    assert!(mails[0].contains(email), "mailed to the owner");
    assert!(!mails[0].contains("wss_"), "no credential in a notice");
}

#[tokio::test]
async fn each_notice_can_be_turned_off_and_stays_off() {
    let app = spawn_app().await;
    let email = "careful@example.com";
    let session = app.signed_up(email).await;
    let settings: Value = app
        .get("/v1/me/notices", Some(&session))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(settings["api_token_created"], json!(true), "on by default");

    let token = |name: &str| json!({ "name": name, "password": PASSWORD, "scopes": ["read"] });
    let created = app
        .post("/v1/me/tokens", token("first"), Some(&session))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let first: Value = created.json().await.expect("json");
    let mails = app.mails().await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Subject: A new API access token"));
    assert!(mails[0].contains("\"first\""), "names the token");
    assert!(
        !mails[0].contains(first["token"].as_str().expect("token")),
        "never the token itself"
    );

    // A token cannot silence the notice of its own creation.
    let refused = app
        .put(
            "/v1/me/notices",
            json!({ "api_token_created": false }),
            first["token"].as_str().expect("token"),
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "session_required").await;

    let changed = app
        .put(
            "/v1/me/notices",
            json!({ "api_token_created": false }),
            &session,
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.expect("json");
    assert_eq!(changed["api_token_created"], json!(false));
    assert_eq!(
        changed["password_changed"],
        json!(true),
        "the others stay on"
    );
    let created = app
        .post("/v1/me/tokens", token("second"), Some(&session))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(app.mails().await.len(), 1, "no notice once turned off");

    let typo = app
        .put(
            "/v1/me/notices",
            json!({ "api_tokens_created": false }),
            &session,
        )
        .await;
    assert_problem(typo, StatusCode::BAD_REQUEST, "malformed_json").await;

    let body =
        json!({ "current_password": PASSWORD, "new_password": "a different long passphrase" });
    let response = app.put("/v1/me/password", body, &session).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let subjects = subjects(&app).await;
    assert_eq!(
        subjects.last().map(String::as_str),
        Some("Your Warden password was changed")
    );
}

#[tokio::test]
async fn a_locked_account_is_told_how_to_ask_for_access() {
    let app = spawn_app().await;
    let email = "guessed@example.com";
    app.register(email).await;
    for _ in 0..10 {
        let response = app.log_in_with(email, "not the password at all").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let mails = app.mails().await;
    let locked: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("Subject: Your Warden account is locked"))
        .collect();
    assert_eq!(locked.len(), 1, "one notice for one lock");
    assert!(locked[0].contains("Ask for access"), "{}", locked[0]);
}
