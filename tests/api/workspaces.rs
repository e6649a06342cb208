use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp, PASSWORD};

async fn create(app: &TestApp, token: &str, name: &str) -> String {
    let response = app
        .post("/v1/workspaces", json!({ "name": name }), Some(token))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["role"], "account_holder");
    body["id"].as_str().expect("id").to_string()
}

async fn add(app: &TestApp, token: &str, workspace: &str, email: &str, role: &str) -> String {
    let response = app
        .post(
            &format!("/v1/workspaces/{workspace}/members"),
            json!({ "email": email, "role": role }),
            Some(token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["account_id"].as_str().expect("id").to_string()
}

async fn patch(app: &TestApp, path: &str, body: Value, token: &str) -> reqwest::Response {
    app.client
        .patch(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("sent")
}

/// Every workspace endpoint, called by each kind of caller.
#[tokio::test]
async fn every_workspace_endpoint_checks_the_callers_role() {
    let app = spawn_app().await;
    let holder = app.signed_up("holder@example.com").await;
    let supervisor = app.signed_up("supervisor@example.com").await;
    let agent = app.signed_up("agent@example.com").await;
    let stranger = app.signed_up("stranger@example.com").await;
    app.register("target@example.com").await;
    let workspace = create(&app, &holder, "Support").await;
    add(
        &app,
        &holder,
        &workspace,
        "supervisor@example.com",
        "supervisor",
    )
    .await;
    add(&app, &holder, &workspace, "agent@example.com", "agent").await;
    let target = add(&app, &holder, &workspace, "target@example.com", "agent").await;
    let w = format!("/v1/workspaces/{workspace}");

    for (token, role) in [(&supervisor, "supervisor"), (&agent, "agent")] {
        let shown: Value = app.get(&w, Some(token)).await.json().await.expect("json");
        assert_eq!(shown["role"], role);
        assert_eq!(shown["members"].as_array().expect("members").len(), 4);
    }
    assert_problem(
        app.get(&w, Some(&stranger)).await,
        StatusCode::NOT_FOUND,
        "workspace_not_found",
    )
    .await;

    for (token, status, code) in [
        (
            &supervisor,
            StatusCode::FORBIDDEN,
            "account_holder_required",
        ),
        (&agent, StatusCode::FORBIDDEN, "account_holder_required"),
        (&stranger, StatusCode::NOT_FOUND, "workspace_not_found"),
    ] {
        let add = app
            .post(
                &format!("{w}/members"),
                json!({ "email": "stranger@example.com", "role": "agent" }),
                Some(token),
            )
            .await;
        assert_problem(add, status, code).await;
        let change = patch(
            &app,
            &format!("{w}/members/{target}"),
            json!({ "role": "supervisor" }),
            token,
        )
        .await;
        assert_problem(change, status, code).await;
        let remove = app.delete(&format!("{w}/members/{target}"), token).await;
        assert_problem(remove, status, code).await;
        let policy = app
            .put(
                &format!("{w}/mfa-policy"),
                json!({ "required": true }),
                token,
            )
            .await;
        assert_problem(policy, status, code).await;
    }

    // The account holder may do all of it, but not leave the workspace without one.
    let change = patch(
        &app,
        &format!("{w}/members/{target}"),
        json!({ "role": "supervisor" }),
        &holder,
    )
    .await;
    assert_eq!(change.status(), StatusCode::OK);
    assert_eq!(
        app.delete(&format!("{w}/members/{target}"), &holder)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let me: Value = app.api_as(&holder).me().await.json().await.expect("json");
    let holder_id = me["id"].as_str().expect("id");
    let step_down = patch(
        &app,
        &format!("{w}/members/{holder_id}"),
        json!({ "role": "agent" }),
        &holder,
    )
    .await;
    assert_problem(step_down, StatusCode::CONFLICT, "last_account_holder").await;
    let unknown = app
        .post(
            &format!("{w}/members"),
            json!({ "email": "nobody@example.com", "role": "agent" }),
            Some(&holder),
        )
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "account_not_found").await;
    let twice = app
        .post(
            &format!("{w}/members"),
            json!({ "email": "agent@example.com", "role": "agent" }),
            Some(&holder),
        )
        .await;
    assert_problem(twice, StatusCode::CONFLICT, "already_member").await;
}

#[tokio::test]
async fn a_workspace_requiring_mfa_walks_its_members_through_enrollment() {
    let app = spawn_app().await;
    let holder = app.signed_up("boss@example.com").await;
    let strict = create(&app, &holder, "Strict").await;
    let relaxed = create(&app, &holder, "Relaxed").await;
    let member = app.signed_up("member@example.com").await;
    let outsider = app.signed_up("outsider@example.com").await;
    add(&app, &holder, &strict, "member@example.com", "agent").await;
    add(&app, &holder, &relaxed, "outsider@example.com", "agent").await;

    let on = app
        .put(
            &format!("/v1/workspaces/{strict}/mfa-policy"),
            json!({ "required": true }),
            &holder,
        )
        .await;
    assert_eq!(on.status(), StatusCode::OK);
    let on: Value = on.json().await.expect("json");
    assert_eq!(on["settings"]["mfa_required"], true);
    // Sessions that skipped MFA end at once; a member of only the relaxed workspace keeps hers.
    assert_problem(
        app.api_as(&member).me().await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.api_as(&holder).me().await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(app.api_as(&outsider).me().await.status(), StatusCode::OK);
    assert_eq!(
        app.log_in_with("outsider@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );

    let response = app.log_in_with("member@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "mfa_enrollment_required");
    let restricted = body["token"].as_str().expect("token").to_string();

    let me: Value = app
        .api_as(&restricted)
        .me()
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["mfa"]["required_by"], json!([strict]));
    for (path, response) in [
        ("/v1/me/sessions", app.api_as(&restricted).sessions().await),
        ("/v1/me/tokens", app.api_as(&restricted).tokens().await),
        (
            "/v1/workspaces",
            app.post("/v1/workspaces", json!({ "name": "x" }), Some(&restricted))
                .await,
        ),
    ] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["code"], "mfa_enrollment_required", "{path}");
    }

    // Enrollment is open to the restricted session; after it, logins ask for the code.
    let enrollment: Value = app
        .post("/v1/me/mfa/totp", json!({}), Some(&restricted))
        .await
        .json()
        .await
        .expect("json");
    let secret = enrollment["secret"].as_str().expect("secret");
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .expect("base32");
    let code = warden::adapters::totp::code_at(
        totp_rs::Algorithm::SHA1,
        6,
        30,
        &bytes,
        app.clock_now().timestamp() as u64,
    )
    .expect("code");
    let confirmed = app
        .post(
            "/v1/me/mfa/totp/confirm",
            json!({ "code": code }),
            Some(&restricted),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);
    let next = app.log_in_with("member@example.com", PASSWORD).await;
    let next: Value = next.json().await.expect("json");
    assert_eq!(next["status"], "mfa_required");
    assert_eq!(
        app.api_as(&restricted).log_out().await.status(),
        StatusCode::NO_CONTENT
    );

    // The decision and its reason are on record.
    let reasons: Vec<Value> = sqlx::query_scalar(
        "SELECT payload -> 'SessionStarted' -> 'required_by' FROM events
         WHERE event_type = 'account.session.started'
           AND (payload -> 'SessionStarted' ->> 'enrolment_only')::boolean",
    )
    .fetch_all(&app.pool)
    .await
    .expect("events");
    assert_eq!(reasons, vec![json!([strict])]);
}

#[tokio::test]
async fn archival_shows_the_next_purge_and_data_services_acknowledge_it() {
    use chrono::{DateTime, Duration, Utc};
    let app = spawn_app().await;
    let holder = app.signed_up("keeper@example.com").await;
    let agent = app.signed_up("clerk@example.com").await;
    let workspace = create(&app, &holder, "Archive").await;
    add(&app, &holder, &workspace, "clerk@example.com", "agent").await;
    let path = format!("/v1/workspaces/{workspace}/archival");
    let time = |v: &Value| -> DateTime<Utc> { serde_json::from_value(v.clone()).expect("time") };

    let off: Value = app
        .get(&path, Some(&agent))
        .await
        .json()
        .await
        .expect("json");
    assert!(off["days"].is_null() && off["next_purge_at"].is_null());
    assert_eq!(off["categories"].as_array().expect("categories").len(), 5);
    assert_problem(
        app.put(&path, json!({ "days": 30 }), &agent).await,
        StatusCode::FORBIDDEN,
        "account_holder_required",
    )
    .await;
    for days in [0, 3651] {
        let refused = app.put(&path, json!({ "days": days }), &holder).await;
        assert_problem(
            refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "archival_days_out_of_range",
        )
        .await;
    }

    let set: Value = app
        .put(&path, json!({ "days": 30 }), &holder)
        .await
        .json()
        .await
        .expect("json");
    let now = app.clock_now();
    let next = time(&set["next_purge_at"]);
    assert_eq!(
        next,
        (now.date_naive() + Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
    );
    assert_eq!(time(&set["cutoff"]), next - Duration::days(30));
    assert_eq!(set["overdue"], false);

    // Shortened mid-cycle: the same run, a later cut-off.
    let shorter: Value = app
        .put(&path, json!({ "days": 7 }), &holder)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(time(&shorter["next_purge_at"]), next);
    assert_eq!(time(&shorter["cutoff"]), next - Duration::days(7));

    // The schedule is for data services: an admin's `archival` token.
    assert_problem(
        app.get("/v1/archival/schedule", Some(&holder)).await,
        StatusCode::FORBIDDEN,
        "admin_required",
    )
    .await;
    let minted = app
        .post(
            "/v1/me/tokens",
            json!({ "name": "purger", "password": PASSWORD, "scopes": ["archival"] }),
            Some(&holder),
        )
        .await;
    assert_problem(minted, StatusCode::FORBIDDEN, "scope_not_allowed").await;
    let admin = app.admin("ops@example.com").await;
    let service: Value = app
        .post(
            "/v1/me/tokens",
            json!({ "name": "purger", "password": PASSWORD, "scopes": ["archival"] }),
            Some(&admin),
        )
        .await
        .json()
        .await
        .expect("json");
    let service = service["token"].as_str().expect("token").to_string();
    let due_soon = (now + Duration::days(2)).to_rfc3339();
    let listed: Value = app
        .get(
            &format!(
                "/v1/archival/schedule?due_before={}",
                due_soon.replace('+', "%2B")
            ),
            Some(&service),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["workspaces"][0]["workspace_id"], workspace);
    let earlier = (now - Duration::days(2)).to_rfc3339();
    let none: Value = app
        .get(
            &format!(
                "/v1/archival/schedule?due_before={}",
                earlier.replace('+', "%2B")
            ),
            Some(&service),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(none["workspaces"], json!([]));

    // Not acknowledged a day after it was due: overdue. Then a purge is recorded.
    app.clock.advance(Duration::days(2) + Duration::hours(1));
    let holder = app.log_in("keeper@example.com").await;
    let late: Value = app
        .get(&path, Some(&holder))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(late["overdue"], true);
    let cutoff = next - Duration::days(7);
    let purge = app
        .post(
            &format!("{path}/purges"),
            json!({ "cutoff": cutoff.to_rfc3339(), "counts": { "messages": 120, "attachments_and_media": 3 } }),
            Some(&service),
        )
        .await;
    assert_eq!(purge.status(), StatusCode::CREATED);
    let after: Value = purge.json().await.expect("json");
    assert_eq!(after["overdue"], false);
    assert_eq!(time(&after["last_purge"]["cutoff"]), cutoff);
    assert!(time(&after["next_purge_at"]) > app.clock_now());
    let future = app
        .post(
            &format!("{path}/purges"),
            json!({ "cutoff": (app.clock_now() + Duration::days(1)).to_rfc3339(), "counts": {} }),
            Some(&service),
        )
        .await;
    assert_problem(future, StatusCode::UNPROCESSABLE_ENTITY, "cutoff_in_future").await;
}
