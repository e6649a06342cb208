use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app};

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = warden::http::openapi::to_json().expect("document");
    // Compared as JSON: a test build's serde_json may keep keys in insertion order (a test-only
    // dependency turns `preserve_order` on), the committed file has them as `warden openapi`
    // prints them.
    let committed: Value = serde_json::from_str(&committed).unwrap_or(Value::Null);
    let generated: Value = serde_json::from_str(&generated).expect("json");
    assert!(
        committed == generated,
        "openapi/openapi.json is stale; regenerate it with: cargo run -q -- openapi > openapi/openapi.json"
    );
}

#[tokio::test]
async fn the_server_serves_its_document_and_offline_docs() {
    let app = spawn_app().await;
    let served: Value = app
        .get("/openapi.json", None)
        .await
        .json()
        .await
        .expect("json");
    let generated: Value =
        serde_json::from_str(&warden::http::openapi::to_json().expect("document")).expect("json");
    assert_eq!(served, generated);
    for path in ["/v1/accounts", "/v1/sessions", "/v1/me/sessions/revoke-all"] {
        assert!(served["paths"][path].is_object(), "{path} documented");
    }
    let docs = app.get("/docs/", None).await;
    assert_eq!(docs.status(), StatusCode::OK);
    let page = docs.text().await.expect("text");
    assert!(
        !page.contains("https://"),
        "the docs page refers to no external host"
    );
    // Every asset the page loads is served by Warden itself.
    let assets: Vec<&str> = page
        .split(['"', '\''])
        .filter(|s| s.ends_with(".js") || s.ends_with(".css") || s.ends_with(".png"))
        .collect();
    assert!(assets.len() >= 5, "{assets:?}");
    for asset in assets {
        assert!(!asset.contains("//"), "{asset} is not local");
        let path = format!("/docs/{}", asset.trim_start_matches("./"));
        assert_eq!(
            app.get(&path, None).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    let init = app
        .get("/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .expect("text");
    assert!(init.contains("\"url\": \"/openapi.json\""), "{init}");
    assert!(
        init.contains("\"validatorUrl\": \"none\""),
        "no validator badge: {init}"
    );
}

#[tokio::test]
async fn unknown_routes_are_problems_and_operations_endpoints_answer() {
    let app = spawn_app().await;
    assert_problem(
        app.get("/v1/nothing-here", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // A known path with another method: 405 and what it does answer to.
    let wrong = app.get("/v1/accounts", None).await;
    let allow = |r: &reqwest::Response| {
        r.headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(allow(&wrong).as_deref(), Some("POST"));
    assert_problem(wrong, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let both = app.get("/v1/me/sessions/revoke-all", None).await;
    assert_eq!(allow(&both).as_deref(), Some("DELETE, POST"));
    assert_problem(both, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["ready"], true);

    app.signed_up("metrics@example.com").await;
    let metrics = app.get("/metrics", None).await.text().await.expect("text");
    assert!(
        metrics.contains(
            "warden_http_requests_total{method=\"POST\",route=\"/v1/sessions\",status=\"201\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("warden_commands_total{aggregate=\"account\",outcome=\"committed\"} 2")
    );
    assert!(metrics.contains("warden_projector_failing{projector=\"credentials_v1\"} 0"));
    assert!(metrics.contains("warden_projector_lag_events{projector=\"session_history_v1\"}"));
}

#[test]
fn every_problem_response_names_listed_codes_of_its_status() {
    let wrong = warden::http::openapi::misnamed_problem_codes();
    assert!(
        wrong.is_empty(),
        "not in ProblemCode, or another status: {wrong:?}"
    );
}

#[test]
fn every_operation_has_an_id_of_its_own() {
    let document: Value =
        serde_json::from_str(&warden::http::openapi::to_json().expect("document")).expect("json");
    let mut seen = std::collections::BTreeMap::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let Some(id) = operation["operationId"].as_str() else {
                continue;
            };
            let here = format!("{method} {path}");
            if let Some(other) = seen.insert(id.to_string(), here.clone()) {
                panic!("operationId `{id}` names both {other} and {here}: generated clients merge them");
            }
        }
    }
    assert!(seen.len() > 50, "{} operations", seen.len());
}
