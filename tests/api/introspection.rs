use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::client::CreateToken;
use crate::helpers::{assert_problem, spawn_app, TestApp, PASSWORD};

async fn api_token(app: &TestApp, session: &str, name: &str, scopes: &[&str]) -> String {
    let response = app
        .api_as(session)
        .create_token(&CreateToken {
            name,
            password: PASSWORD,
            scopes: Some(scopes.to_vec()),
            ..CreateToken::default()
        })
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn services_ask_warden_about_a_credential() {
    let app = spawn_app().await;
    let service_owner = app.admin("reports@example.com").await;
    let service = api_token(&app, &service_owner, "reports", &["introspect"]).await;
    let user = app.signed_up("agent@example.com").await;
    let workspace: Value = app
        .post("/v1/workspaces", json!({ "name": "Desk" }), Some(&user))
        .await
        .json()
        .await
        .expect("json");
    app.put(
        "/v1/me/pin",
        json!({ "pin": "2468", "password": PASSWORD }),
        &user,
    )
    .await;
    app.post("/v1/me/pin/verify", json!({ "pin": "2468" }), Some(&user))
        .await;
    let ask = |token: String| app.post("/v1/introspect", json!({ "token": token }), Some(&service));

    let session: Value = ask(user.clone()).await.json().await.expect("json");
    assert_eq!(session["active"], true);
    assert_eq!(session["kind"], "session");
    assert_eq!(session["mfa_passed"], false);
    assert_eq!(session["mfa_enrollment_required"], false);
    assert_eq!(
        session["workspaces"],
        json!([{ "id": workspace["id"], "role": "account_holder" }])
    );
    assert!(session["pin_unlocked_until"].is_string());
    let me: Value = app.api_as(&user).me().await.json().await.expect("json");
    assert_eq!(session["account_id"], me["id"]);

    let reader = api_token(&app, &user, "reader", &["read"]).await;
    let token: Value = ask(reader.clone()).await.json().await.expect("json");
    assert_eq!(token["kind"], "api_token");
    assert_eq!(token["scopes"], json!(["read"]));

    assert_eq!(
        app.api_as(&user).log_out().await.status(),
        StatusCode::NO_CONTENT
    );
    let ended: Value = ask(user.clone()).await.json().await.expect("json");
    assert_eq!(ended, json!({ "active": false }));
    let garbage: Value = ask("wss_nonsense".into()).await.json().await.expect("json");
    assert_eq!(garbage, json!({ "active": false }));

    // Only API tokens with the `introspect` scope may ask.
    let by_session = app
        .post(
            "/v1/introspect",
            json!({ "token": reader }),
            Some(&service_owner),
        )
        .await;
    assert_problem(by_session, StatusCode::FORBIDDEN, "insufficient_scope").await;
    let by_reader = app
        .post("/v1/introspect", json!({ "token": reader }), Some(&reader))
        .await;
    assert_problem(by_reader, StatusCode::FORBIDDEN, "insufficient_scope").await;
}

#[tokio::test]
async fn only_platform_admins_grant_introspect_and_its_calls_have_a_limit_of_their_own() {
    let app = spawn_app().await;
    let user = app.signed_up("plain@example.com").await;
    let refused = app
        .api_as(&user)
        .create_token(&CreateToken {
            name: "sneaky",
            password: PASSWORD,
            scopes: Some(vec!["introspect"]),
            ..CreateToken::default()
        })
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "scope_not_allowed").await;

    let admin = app.admin("ops@example.com").await;
    let service = api_token(&app, &admin, "gateway", &["introspect", "read"]).await;
    // Far more than the 60 requests a minute an API token gets: a gateway introspects on every
    // request it serves.
    for _ in 0..100 {
        let answer: Value = app
            .post("/v1/introspect", json!({ "token": user }), Some(&service))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(answer["active"], true);
    }
    // None of them took a slot of the token's own limit.
    let response = app.api_as(&service).me().await;
    assert_eq!(response.status(), StatusCode::OK);
    let remaining = response
        .headers()
        .get("ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(remaining.as_deref(), Some("59"));
}

/// An entry dropped because its account changed is rebuilt from what it knew of the workspaces
/// only if no workspace changed since it was built: here one was created in between, so the
/// rebuilt credential lists it.
#[tokio::test]
async fn a_credential_rebuilt_after_its_account_changed_lists_a_workspace_created_before() {
    let app = spawn_app().await;
    let owner = app.admin("directory@example.com").await;
    let service = api_token(&app, &owner, "directory", &["introspect"]).await;
    let user = app.signed_up("founder@example.com").await;
    let workspaces = || async {
        let answer: Value = app
            .post("/v1/introspect", json!({ "token": user }), Some(&service))
            .await
            .json()
            .await
            .expect("json");
        answer["workspaces"].clone()
    };
    assert_eq!(workspaces().await, json!([]), "cached with no workspace");
    let workspace: Value = app
        .post("/v1/workspaces", json!({ "name": "Atelier" }), Some(&user))
        .await
        .json()
        .await
        .expect("json");
    let changed = app
        .put(
            "/v1/me/notices",
            json!({ "api_token_created": false }),
            &user,
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    // The process drops the entry when it reads the account's change; then the entry is built
    // again.
    let expected = json!([{ "id": workspace["id"], "role": "account_holder" }]);
    let mut seen = Value::Null;
    for _ in 0..200 {
        seen = workspaces().await;
        if seen == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the rebuilt credential lists {seen}, not the workspace created before");
}
