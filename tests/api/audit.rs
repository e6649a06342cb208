use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use warden_projections::replay::replay;

use crate::helpers::{assert_problem, dump_database, spawn_app, TestApp, PASSWORD};

async fn entries(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get(&format!("/v1/audit{query}"), Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.expect("json")
}

#[tokio::test]
async fn every_recorded_event_is_in_the_audit_log_with_who_what_and_from_where() {
    let app = spawn_app().await;
    let user = app.signed_up("audited@example.com").await;
    app.log_in_with("audited@example.com", "wrong password")
        .await;
    let workspace: Value = app
        .post("/v1/workspaces", json!({ "name": "Audited" }), Some(&user))
        .await
        .json()
        .await
        .expect("json");
    let admin = app.admin("auditor@example.com").await;

    let refused = app.get("/v1/audit", Some(&user)).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "auditor_required").await;
    let minted = app
        .post(
            "/v1/me/tokens",
            json!({ "name": "peek", "password": PASSWORD, "scopes": ["audit:read"] }),
            Some(&user),
        )
        .await;
    assert_problem(minted, StatusCode::FORBIDDEN, "scope_not_allowed").await;

    // Everything, page by page.
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=3&cursor={c}"),
            None => "?limit=3".to_string(),
        };
        let page = entries(&app, &admin, &query).await;
        for entry in page["entries"].as_array().expect("entries") {
            assert!(seen.insert(entry["position"].as_str().expect("position").to_string()));
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len() as i64, total, "one entry per event, each once");

    let failed = entries(&app, &admin, "?action=account.password.check_failed").await;
    let failed = &failed["entries"][0];
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["reason"], "login");
    assert_eq!(failed["ip"], "127.0.0.1");
    assert_eq!(failed["user_agent"], "warden-tests/1.0");
    let me: Value = app.api_as(&user).me().await.json().await.expect("json");
    assert_eq!(failed["subject"], me["id"]);
    let mine = entries(
        &app,
        &admin,
        &format!(
            "?actor={}&action=workspace.created",
            me["id"].as_str().expect("id")
        ),
    )
    .await;
    assert_eq!(mine["entries"][0]["workspace_id"], workspace["id"]);
    let none = entries(&app, &admin, "?outcome=refused").await;
    assert_eq!(none["entries"], json!([]));
    let bad = app.get("/v1/audit?cursor=nonsense", Some(&admin)).await;
    assert_problem(bad, StatusCode::BAD_REQUEST, "invalid_cursor").await;

    let export = app.get("/v1/audit/export", Some(&admin)).await;
    assert_eq!(
        export
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-ndjson")
    );
    let body = export.text().await.expect("text");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON entry per line"))
        .collect();
    assert_eq!(lines.len() as i64, total);
}

#[tokio::test]
async fn a_workspace_audit_log_is_for_its_holders_and_supervisors() {
    let app = spawn_app().await;
    let holder = app.signed_up("wsholder@example.com").await;
    let supervisor = app.signed_up("wssuper@example.com").await;
    let agent = app.signed_up("wsagent@example.com").await;
    let stranger = app.signed_up("wsstranger@example.com").await;
    let workspace: Value = app
        .post("/v1/workspaces", json!({ "name": "Floor" }), Some(&holder))
        .await
        .json()
        .await
        .expect("json");
    let id = workspace["id"].as_str().expect("id");
    for (email, role) in [
        ("wssuper@example.com", "supervisor"),
        ("wsagent@example.com", "agent"),
    ] {
        app.post(
            &format!("/v1/workspaces/{id}/members"),
            json!({ "email": email, "role": role }),
            Some(&holder),
        )
        .await;
    }
    let path = format!("/v1/workspaces/{id}/audit");
    let log: Value = app
        .get(&path, Some(&supervisor))
        .await
        .json()
        .await
        .expect("json");
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        vec![
            "workspace.member.added",
            "workspace.member.added",
            "workspace.created"
        ]
    );
    assert_eq!(app.get(&path, Some(&holder)).await.status(), StatusCode::OK);
    assert_problem(
        app.get(&path, Some(&agent)).await,
        StatusCode::FORBIDDEN,
        "supervisor_required",
    )
    .await;
    assert_problem(
        app.get(&path, Some(&stranger)).await,
        StatusCode::NOT_FOUND,
        "workspace_not_found",
    )
    .await;
}

#[tokio::test]
async fn auditors_read_an_accounts_history_and_its_state_at_any_instant() {
    let app = spawn_app().await;
    let before = app.clock_now() - chrono::Duration::seconds(1);
    app.register("hist@example.com").await;
    app.clock.advance(chrono::Duration::seconds(10));
    let registered_only = app.clock_now() - chrono::Duration::seconds(1);
    let session = app.log_in("hist@example.com").await;
    app.post(
        "/v1/me/tokens",
        json!({ "name": "ci", "password": PASSWORD }),
        Some(&session),
    )
    .await;
    let me: Value = app.api_as(&session).me().await.json().await.expect("json");
    let id = me["id"].as_str().expect("id");
    let admin = app.admin("historian@example.com").await;

    assert_problem(
        app.get(&format!("/v1/accounts/{id}/history"), Some(&session))
            .await,
        StatusCode::FORBIDDEN,
        "auditor_required",
    )
    .await;
    let history: Value = app
        .get(&format!("/v1/accounts/{id}/history"), Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    let events = history["events"].as_array().expect("events");
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        vec![
            "account.registered",
            "account.session.started",
            "account.api_token.created"
        ]
    );
    assert_eq!(events[0]["data"]["email"], "hist@example.com");
    assert_eq!(events[0]["data"]["password_hash"], "[redacted]");
    assert_eq!(events[1]["data"]["token_hash"], "[redacted]");
    assert_eq!(events[1]["metadata"]["ip"], "127.0.0.1");
    assert_eq!(events[2]["data"]["name"], "ci");
    let text = history.to_string();
    assert!(
        !text.contains("$argon2id$"),
        "no password hash in the history"
    );

    let path = |at: chrono::DateTime<chrono::Utc>| {
        format!(
            "/v1/accounts/{id}/state?at={}",
            at.to_rfc3339().replace('+', "%2B")
        )
    };
    let nothing: Value = app
        .get(&path(before), Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (
            nothing["registered"].clone(),
            nothing["events_applied"].clone()
        ),
        (json!(false), json!(0))
    );
    let early: Value = app
        .get(&path(registered_only), Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(early["registered"], true);
    assert_eq!(early["live_sessions"], 0);
    let now: Value = app
        .get(&path(app.clock_now()), Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(now["live_sessions"], 1);
    assert_eq!(now["live_api_tokens"], 1);
    let unknown = app
        .get(
            &format!("/v1/accounts/{}/history", uuid::Uuid::new_v4()),
            Some(&admin),
        )
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "account_not_found").await;
}

#[tokio::test]
async fn erasure_shreds_personal_data_and_keeps_the_log_whole() {
    let app = spawn_app().await;
    let session = app.signed_up("gone@example.com").await;
    let token: Value = app
        .post(
            "/v1/me/tokens",
            json!({ "name": "ci", "password": PASSWORD }),
            Some(&session),
        )
        .await
        .json()
        .await
        .expect("json");
    let token = token["token"].as_str().expect("token").to_string();
    let me: Value = app.api_as(&session).me().await.json().await.expect("json");
    let id = me["id"].as_str().expect("id").to_string();
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    let admin = app.admin("dpo@example.com").await;

    let refused = app
        .post(
            &format!("/v1/admin/accounts/{id}/erase"),
            json!({}),
            Some(&session),
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "admin_required").await;
    let erased = app
        .post(
            &format!("/v1/admin/accounts/{id}/erase"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);

    for credential in [&session, &token] {
        assert_problem(
            app.api_as(credential).me().await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    let login = app.log_in_with("gone@example.com", PASSWORD).await;
    assert_problem(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    // The log is whole; personal fields read `erased`.
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert!(events_after > events_before);
    let history: Value = app
        .get(&format!("/v1/accounts/{id}/history"), Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["events"][0]["data"]["email"], "erased");
    assert_eq!(history["events"][1]["data"]["device"], "erased");
    let last = history["events"]
        .as_array()
        .expect("events")
        .last()
        .cloned()
        .expect("last");
    assert_eq!(last["type"], "account.erased");
    let audit: Value = app
        .get(
            &format!("/v1/audit?subject={id}&action=account.session.started"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(audit["entries"][0]["ip"], "erased");
    let keys: Option<String> =
        sqlx::query_scalar("SELECT sealed_key FROM account_keys WHERE account_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .expect("row");
    assert_eq!(keys, None, "the data key is destroyed");

    // The stream shows `erased`; the chain still verifies; every view rebuilds identically; no
    // table holds the address or the IP.
    app.caught_up().await;
    let stream: Value = app
        .get("/v1/events?limit=1000", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    let registered = stream["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "account.registered" && e["subject"] == id.as_str())
        .cloned()
        .expect("registration streamed");
    assert_eq!(registered["data"]["email"], "erased");
    let verified: Value = app
        .get("/v1/audit/verify", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(verified["ok"], true, "{verified}");
    let report = replay(
        &app.pool,
        app.database_url.parse().expect("url"),
        &warden_projections::all(None),
    )
    .await
    .expect("replayed");
    assert!(report.identical, "{report:?}");
    let dump = dump_database(&app.pool).await;
    for personal in ["gone@example.com", "127.0.0.1", "test laptop"] {
        assert!(
            !dump.contains(personal),
            "{personal} is stored in plaintext"
        );
    }

    // Erasing again completes nothing new and fails nothing; the address is free again.
    let again = app
        .post(
            &format!("/v1/admin/accounts/{id}/erase"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    app.register("gone@example.com").await;
}

#[tokio::test]
async fn an_auditor_reads_the_audit_trail_and_nothing_more_until_the_role_is_taken_back() {
    let app = spawn_app().await;
    let admin = app.admin("admin@example.com").await;
    let carol = app.signed_up("carol@example.com").await;
    let registered = app.register("subject@example.com").await;
    let subject = registered["id"].as_str().expect("id").to_string();
    let me: Value = app
        .get("/v1/me", Some(&carol))
        .await
        .json()
        .await
        .expect("json");
    let carol_id = me["id"].as_str().expect("id").to_string();
    assert_eq!(me["is_auditor"], false);
    let reads = [
        "/v1/audit".to_string(),
        format!("/v1/accounts/{subject}/history"),
        format!("/v1/accounts/{subject}/state?at=2100-01-01T00:00:00Z"),
        "/v1/audit/verify".to_string(),
        "/v1/audit/export".to_string(),
    ];
    for path in &reads {
        let refused = app.get(path, Some(&carol)).await;
        assert_problem(refused, StatusCode::FORBIDDEN, "auditor_required").await;
    }

    // Only an administrator grants the role.
    let grant = format!("/v1/admin/accounts/{carol_id}/auditor");
    let by_carol = app.post(&grant, json!({}), Some(&carol)).await;
    assert_problem(by_carol, StatusCode::FORBIDDEN, "admin_required").await;
    let granted = app.post(&grant, json!({}), Some(&admin)).await;
    assert_eq!(granted.status(), StatusCode::NO_CONTENT);
    // Every process shows the grant once it has returned, the cached profile included.
    assert_eq!(profile(&app, &carol).await["is_auditor"], true);
    for path in &reads {
        let read = app.get(path, Some(&carol)).await;
        assert_eq!(read.status(), StatusCode::OK, "{path}");
    }
    let log = entries(&app, &carol, "?action=account.auditor.granted").await;
    assert_eq!(log["entries"][0]["subject"], carol_id.as_str(), "{log}");

    // Reading is all: no admin action, no platform-wide token.
    let unlock = app
        .post(
            &format!("/v1/admin/accounts/{subject}/unlock"),
            json!({}),
            Some(&carol),
        )
        .await;
    assert_problem(unlock, StatusCode::FORBIDDEN, "admin_required").await;
    let token = app
        .post(
            "/v1/me/tokens",
            json!({ "name": "audit", "password": PASSWORD, "scopes": ["audit:read"] }),
            Some(&carol),
        )
        .await;
    assert_problem(token, StatusCode::FORBIDDEN, "scope_not_allowed").await;

    // Taken back: refused on the next request.
    let revoked = app.delete(&grant, &admin).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let refused = app.get("/v1/audit", Some(&carol)).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "auditor_required").await;
    assert_eq!(profile(&app, &carol).await["is_auditor"], false);
}

/// `GET /v1/me` of the holder of `token`.
async fn profile(app: &TestApp, token: &str) -> Value {
    let me = app.get("/v1/me", Some(token)).await;
    me.json().await.expect("json")
}
