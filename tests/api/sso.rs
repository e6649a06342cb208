//! Single sign-on against a real, certified OpenID Provider (panva's `oidc-provider`, started
//! from `tests/idp`), driven as a browser would be: a cookie jar per site and every redirect
//! followed by hand.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{assert_problem, spawn_app, TestApp, PASSWORD};

const CLIENT_ID: &str = "warden";
const CLIENT_SECRET: &str = "a-client-secret-only-the-provider-and-warden-know";
/// The tests' Warden is reachable at this public URL (the callback is rewritten to the test
/// server's address, as a reverse proxy would).
const PUBLIC_URL: &str = "https://app.warden.test";
const RETURN_TO: &str = "https://app.warden.test/signed-in";

/// The provider on loopback. Every start makes new signing keys.
pub struct Provider {
    port: u16,
    child: Option<Child>,
    /// Where it sends back-channel logout tokens, from its next start.
    pub backchannel: Option<String>,
    /// How long its ID tokens live, from its next start (an hour when unset).
    pub id_token_seconds: Option<u32>,
}

impl Provider {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut provider = Self {
            port,
            child: None,
            backchannel: None,
            id_token_seconds: None,
        };
        provider.launch().await;
        provider
    }

    async fn launch(&mut self) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/idp");
        let mut child = Command::new("node")
            .current_dir(dir)
            .arg("server.mjs")
            .arg(self.port.to_string())
            .arg(CLIENT_ID)
            .arg(CLIENT_SECRET)
            .arg(format!("{PUBLIC_URL}/v1/sso/callback"))
            .args(self.backchannel.iter())
            .env(
                "IDP_ID_TOKEN_SECONDS",
                self.id_token_seconds.unwrap_or(3600).to_string(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the test identity provider (npm ci in tests/idp)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("ready") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "the identity provider started");
        // The provider goes on writing notices; a closed pipe would end it.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("identity provider: {line}");
            }
        });
        self.child = Some(child);
    }

    /// Stops and starts the provider on the same address: it signs with new keys from now on.
    pub async fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
        self.launch().await;
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next token response carries an ID token changed after it was signed.
    pub async fn tamper_next_token(&self) {
        let response = reqwest::Client::new()
            .post(format!("{}/__test/tamper", self.issuer()))
            .send()
            .await
            .expect("tamper");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

/// A browser's cookies for one site, and a client that follows no redirect.
#[derive(Default)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn take(&mut self, response: &Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.0.insert(name.trim().to_string(), value.to_string());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("a redirect, got {}", response.status()))
        .to_string()
}

/// A sign-in as it reaches the provider's redirect back to Warden.
pub struct AtCallback {
    /// The callback URL on the test server.
    pub url: String,
    pub warden_cookies: String,
    /// The browser's cookies at the provider: its session there.
    pub provider_cookies: String,
}

/// Starts a sign-in at Warden and signs in at the provider as `login`; `edit` may change the
/// authorization request on its way to the provider.
pub async fn through_provider(
    app: &TestApp,
    provider: &Provider,
    provider_id: &str,
    login: &str,
    edit: impl Fn(String) -> String,
) -> AtCallback {
    let start = format!(
        "{}/v1/sso/{provider_id}/start?return_to={}",
        app.address,
        urlencoding::encode(RETURN_TO)
    );
    from_start(app, provider, &start, login, edit).await
}

/// The same from a start URL Warden handed out.
async fn from_start(
    app: &TestApp,
    provider: &Provider,
    start: &str,
    login: &str,
    edit: impl Fn(String) -> String,
) -> AtCallback {
    let client = browser();
    let start = client
        .get(start.replacen(PUBLIC_URL, &app.address, 1))
        .send()
        .await
        .expect("start");
    assert_eq!(start.status(), StatusCode::FOUND);
    let mut warden = Jar::default();
    warden.take(&start);
    let cookie = warden
        .0
        .get("__Host-warden-sso")
        .cloned()
        .unwrap_or_default();
    assert!(!cookie.is_empty(), "a browser-binding cookie");
    let set_cookie = start
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    let authorize = edit(location(&start));
    assert!(authorize.starts_with(&provider.issuer()));
    for parameter in [
        "state=",
        "nonce=",
        "code_challenge=",
        "code_challenge_method=S256",
    ] {
        assert!(authorize.contains(parameter), "{parameter} in {authorize}");
    }

    let mut jar = Jar::default();
    let mut url = authorize;
    // Login form, consent form, and the redirect to Warden's callback.
    for _ in 0..12 {
        if url.starts_with(PUBLIC_URL) {
            let url = url.replacen(PUBLIC_URL, &app.address, 1);
            return AtCallback {
                url,
                warden_cookies: warden.header(),
                provider_cookies: jar.header(),
            };
        }
        let absolute = if url.starts_with('/') {
            format!("{}{url}", provider.issuer())
        } else {
            url.clone()
        };
        let response = client
            .get(&absolute)
            .header("cookie", jar.header())
            .send()
            .await
            .expect("provider");
        jar.take(&response);
        if response.status().is_redirection() {
            url = location(&response);
            continue;
        }
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "the provider's page at {absolute}"
        );
        let page = response.text().await.expect("page");
        let form = if page.contains(r#"name="login""#) {
            vec![
                ("prompt", "login"),
                ("login", login),
                ("password", "anything"),
            ]
        } else {
            vec![("prompt", "consent")]
        };
        let submit = client
            .post(&absolute)
            .header("cookie", jar.header())
            .form(&form)
            .send()
            .await
            .expect("submit");
        jar.take(&submit);
        url = location(&submit);
    }
    panic!("the provider never sent the browser back");
}

/// Finishes the sign-in at Warden's callback.
pub async fn callback(at: &AtCallback) -> Response {
    browser()
        .get(&at.url)
        .header("cookie", &at.warden_cookies)
        .send()
        .await
        .expect("callback")
}

/// The login code Warden's callback put into the return address.
pub async fn login_code(response: Response) -> String {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        response.text().await
    );
    let to = location(&response);
    assert!(to.starts_with(RETURN_TO), "{to}");
    let url = reqwest::Url::parse(&to).expect("url");
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "login_code")
        .map(|(_, v)| v.to_string());
    code.expect("a login code")
}

pub async fn exchange(app: &TestApp, code: &str) -> Response {
    app.post("/v1/sso/exchange", json!({ "login_code": code }), None)
        .await
}

/// A whole sign-in: the session token.
pub async fn signed_in(
    app: &TestApp,
    provider: &Provider,
    provider_id: &str,
    login: &str,
) -> String {
    let at = through_provider(app, provider, provider_id, login, |u| u).await;
    let code = login_code(callback(&at).await).await;
    let response = exchange(app, &code).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "authenticated");
    body["token"].as_str().expect("token").to_string()
}

/// A platform provider configured by an administrator, with `options` on top.
pub async fn configured(app: &TestApp, provider: &Provider, options: Value) -> String {
    let admin = app.admin("root@example.com").await;
    let mut body = json!({
        "name": "Test ID",
        "issuer": provider.issuer(),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    });
    for (k, v) in options.as_object().cloned().unwrap_or_default() {
        body[k] = v;
    }
    let response = app
        .post("/v1/admin/identity-providers", body, Some(&admin))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("json");
    assert!(created.get("client_secret").is_none());
    created["id"].as_str().expect("id").to_string()
}

/// A workspace `holder` created, with `email` as an agent: its id.
async fn workspace_with_agent(app: &TestApp, holder: &str, name: &str, email: &str) -> String {
    let created = app
        .post("/v1/workspaces", json!({ "name": name }), Some(holder))
        .await;
    let workspace: Value = created.json().await.expect("json");
    let workspace = workspace["id"].as_str().expect("id").to_string();
    let member = json!({ "email": email, "role": "agent" });
    let path = format!("/v1/workspaces/{workspace}/members");
    let added = app.post(&path, member, Some(holder)).await;
    assert_eq!(added.status(), StatusCode::CREATED);
    workspace
}

async fn me(app: &TestApp, token: &str) -> Value {
    let response = app.get("/v1/me", Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

async fn current_method(app: &TestApp, token: &str) -> String {
    app.caught_up().await;
    let response = app.get("/v1/me/sessions", Some(token)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a full session lists its sessions"
    );
    let body: Value = response.json().await.expect("json");
    let current = body["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["current"] == true)
        .cloned();
    current.expect("the current session")["method"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn refusals(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT payload->'SignInRefused'->>'reason' FROM events
         WHERE event_type = 'identity_provider.sign_in_refused' ORDER BY global_position",
    )
    .fetch_all(&app.pool)
    .await
    .expect("refusals")
}

#[tokio::test]
async fn a_first_sign_in_creates_the_account_and_the_second_finds_it_by_its_identity() {
    let app = spawn_app().await;
    let provider = Provider::start().await;
    let id = configured(&app, &provider, json!({ "create_accounts": true })).await;

    let buttons: Value = app
        .get("/v1/identity-providers", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(buttons, json!([{ "id": id, "name": "Test ID" }]));

    let first = signed_in(&app, &provider, &id, "grace@example.com").await;
    let profile = me(&app, &first).await;
    assert_eq!(profile["email"], "grace@example.com");
    assert_eq!(current_method(&app, &first).await, "sso");
    let history: Value = app
        .get("/v1/me/sessions", Some(&first))
        .await
        .json()
        .await
        .expect("json");
    let recorded = &history["sessions"][0]["provider"];
    assert_eq!(recorded["provider_id"], id.as_str(), "{history}");
    assert_eq!(recorded["issuer"], provider.issuer().as_str());

    let second = signed_in(&app, &provider, &id, "grace@example.com").await;
    assert_ne!(first, second);
    assert_eq!(me(&app, &second).await["id"], profile["id"]);

    // Created by its provider, the account has no password to log in with, and keeps its only
    // way to sign in.
    let response = app.log_in_with("grace@example.com", PASSWORD).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unlink = app
        .delete(&format!("/v1/me/identities/{id}"), &second)
        .await;
    assert_problem(unlink, StatusCode::CONFLICT, "last_way_to_sign_in").await;

    let at = through_provider(&app, &provider, &id, "grace@example.com", |u| u).await;
    let code = login_code(callback(&at).await).await;
    let dump = crate::helpers::dump_database(&app.pool).await;
    assert!(
        dump.contains("account.identity.linked"),
        "the dump has the log"
    );
    let state = reqwest::Url::parse(&at.url).expect("url");
    let state = state
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.to_string());
    let state = state.expect("state");
    for secret in [
        CLIENT_SECRET,
        "grace@example.com",
        &first,
        &first[4..],
        &second[4..],
        &code,
        &state,
    ] {
        assert!(!dump.contains(secret), "{secret} is stored in plaintext");
    }
}

#[tokio::test]
async fn a_member_links_the_workspace_provider_from_settings_and_signs_in_with_it() {
    let app = spawn_app().await;
    let provider = Provider::start().await;
    let holder = app.signed_up("holder@example.com").await;
    let mia = app.signed_up("mia@example.com").await;
    let outsider = app.signed_up("outsider@example.com").await;
    let workspace = workspace_with_agent(&app, &holder, "Corp", "mia@example.com").await;
    let members = format!("/v1/workspaces/{workspace}/members");
    let body = json!({
        "name": "Corp SSO", "issuer": provider.issuer(), "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    });
    let created = app
        .post(
            &format!("/v1/workspaces/{workspace}/identity-providers"),
            body,
            Some(&holder),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();

    let link =
        |password: &str| json!({ "provider_id": id, "return_to": RETURN_TO, "password": password });
    let wrong = app
        .post("/v1/me/identities", link("not my password"), Some(&mia))
        .await;
    assert_problem(wrong, StatusCode::FORBIDDEN, "reauthentication_failed").await;
    let not_member = app
        .post("/v1/me/identities", link(PASSWORD), Some(&outsider))
        .await;
    assert_problem(
        not_member,
        StatusCode::NOT_FOUND,
        "identity_provider_not_found",
    )
    .await;
    let started = app
        .post("/v1/me/identities", link(PASSWORD), Some(&mia))
        .await;
    assert_eq!(started.status(), StatusCode::CREATED);
    let start_url = started.json::<Value>().await.expect("json")["start_url"]
        .as_str()
        .expect("url")
        .to_string();

    // At the provider Mia is someone with another address; the link makes it hers.
    let at = from_start(&app, &provider, &start_url, "m.lopez@corp.example", |u| u).await;
    let linked = callback(&at).await;
    assert_eq!(linked.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&linked), format!("{RETURN_TO}?linked={id}"));
    // The start URL links once: a second trip through it links nothing.
    let again = from_start(
        &app,
        &provider,
        &start_url,
        "someone.else@corp.example",
        |u| u,
    )
    .await;
    assert_problem(
        callback(&again).await,
        StatusCode::CONFLICT,
        "identity_already_linked",
    )
    .await;
    let identities: Value = app
        .get("/v1/me/identities", Some(&mia))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(identities[0]["provider_name"], "Corp SSO", "{identities}");

    let token = signed_in(&app, &provider, &id, "m.lopez@corp.example").await;
    assert_eq!(me(&app, &token).await["email"], "mia@example.com");

    // Removed from the workspace, she no longer signs in through its provider.
    let account = me(&app, &mia).await["id"].as_str().expect("id").to_string();
    let removed = app.delete(&format!("{members}/{account}"), &holder).await;
    assert!(removed.status().is_success());
    let at = through_provider(&app, &provider, &id, "m.lopez@corp.example", |u| u).await;
    assert_problem(
        callback(&at).await,
        StatusCode::FORBIDDEN,
        "sso_not_a_member",
    )
    .await;

    // Unlinking ends the sessions signed in through it.
    let unlinked = app.delete(&format!("/v1/me/identities/{id}"), &mia).await;
    assert_eq!(unlinked.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get("/v1/me", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(app.get("/v1/me", Some(&mia)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_provider_sign_in_skips_the_mfa_a_workspace_requires_and_a_password_login_does_not() {
    let app = spawn_app().await;
    let provider = Provider::start().await;
    let id = configured(&app, &provider, json!({ "link_by_verified_email": true })).await;
    let password_session = app.signed_up("ada@example.com").await;
    let holder = app.signed_up("holder@example.com").await;
    let workspace = workspace_with_agent(&app, &holder, "Support", "ada@example.com").await;

    // The verified address links the identity to Ada's account.
    let before_policy = signed_in(&app, &provider, &id, "ada@example.com").await;
    let policy = format!("/v1/workspaces/{workspace}/mfa-policy");
    let on = app.put(&policy, json!({ "required": true }), &holder).await;
    assert!(on.status().is_success());
    app.caught_up().await;

    // The policy ends the password-only session, not the provider's.
    let ended = app.get("/v1/me", Some(&password_session)).await;
    assert_problem(ended, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(current_method(&app, &before_policy).await, "sso");

    let password = app.log_in_with("ada@example.com", PASSWORD).await;
    assert_eq!(password.status(), StatusCode::OK);
    let step: Value = password.json().await.expect("json");
    assert_eq!(step["status"], "mfa_enrollment_required");

    let token = signed_in(&app, &provider, &id, "ada@example.com").await;
    assert_eq!(current_method(&app, &token).await, "sso");
    assert_eq!(me(&app, &token).await["email"], "ada@example.com");
}

#[tokio::test]
async fn an_existing_address_is_linked_only_when_verified_and_allowed() {
    let app = spawn_app().await;
    let provider = Provider::start().await;
    let strict = configured(&app, &provider, json!({ "create_accounts": true })).await;
    app.register("lin@example.com").await;
    let at = through_provider(&app, &provider, &strict, "lin@example.com", |u| u).await;
    assert_problem(
        callback(&at).await,
        StatusCode::CONFLICT,
        "sso_link_required",
    )
    .await;

    let admin = app.log_in("root@example.com").await;
    let linking = app
        .client
        .patch(app.url(&format!("/v1/admin/identity-providers/{strict}")))
        .bearer_auth(&admin)
        .json(&json!({ "link_by_verified_email": true }))
        .send()
        .await
        .expect("patch");
    assert_eq!(linking.status(), StatusCode::OK);

    let at = through_provider(
        &app,
        &provider,
        &strict,
        "unverified:lin@example.com",
        |u| u,
    )
    .await;
    assert_problem(
        callback(&at).await,
        StatusCode::CONFLICT,
        "sso_link_required",
    )
    .await;
    // An unverified address creates no account either.
    let at = through_provider(
        &app,
        &provider,
        &strict,
        "unverified:new@example.com",
        |u| u,
    )
    .await;
    assert_problem(
        callback(&at).await,
        StatusCode::FORBIDDEN,
        "sso_account_unknown",
    )
    .await;
    // Some providers say "true" as a string.
    let token = signed_in(&app, &provider, &strict, "stringly:lin@example.com").await;
    assert_eq!(me(&app, &token).await["email"], "lin@example.com");

    assert_eq!(
        refusals(&app).await,
        ["link_required", "link_required", "account_unknown"]
    );
}

#[tokio::test]
async fn a_workspace_provider_signs_in_nobody_who_did_not_link_it() {
    let app = spawn_app().await;
    let provider = Provider::start().await;
    let holder = app.signed_up("holder@example.com").await;
    app.register("victim@example.com").await;
    let workspace: Value = app
        .post(
            "/v1/workspaces",
            json!({ "name": "Own IdP" }),
            Some(&holder),
        )
        .await
        .json()
        .await
        .expect("json");
    let path = format!(
        "/v1/workspaces/{}/identity-providers",
        workspace["id"].as_str().expect("id")
    );
    let body = json!({
        "name": "Holder's IdP", "issuer": provider.issuer(), "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    });
    let mut broad = body.clone();
    broad["link_by_verified_email"] = json!(true);
    assert_problem(
        app.post(&path, broad, Some(&holder)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "workspace_provider_too_broad",
    )
    .await;
    let outsider = app.signed_up("outsider@example.com").await;
    assert_problem(
        app.post(&path, body.clone(), Some(&outsider)).await,
        StatusCode::NOT_FOUND,
        "workspace_not_found",
    )
    .await;

    let created = app.post(&path, body, Some(&holder)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    // The holder controls the provider and can make it vouch for any address: still nobody.
    for login in [
        "victim@example.com",
        "holder@example.com",
        "brand-new@example.com",
    ] {
        let at = through_provider(&app, &provider, &id, login, |u| u).await;
        assert_problem(
            callback(&at).await,
            StatusCode::FORBIDDEN,
            "sso_not_a_member",
        )
        .await;
    }
    let buttons: Value = app
        .get("/v1/identity-providers", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(buttons, json!([]));
}

#[tokio::test]
async fn every_tampered_replayed_or_misdirected_answer_is_refused_and_audited() {
    let app = spawn_app().await;
    let provider = Provider::start().await;
    let id = configured(&app, &provider, json!({ "create_accounts": true })).await;

    // Replayed state: the second use of one callback.
    let at = through_provider(&app, &provider, &id, "eve@example.com", |u| u).await;
    let code = login_code(callback(&at).await).await;
    assert_problem(
        callback(&at).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "sso_attempt_invalid",
    )
    .await;

    // The login code: once, and within 60 seconds.
    assert_eq!(exchange(&app, &code).await.status(), StatusCode::CREATED);
    assert_problem(
        exchange(&app, &code).await,
        StatusCode::UNAUTHORIZED,
        "login_code_invalid",
    )
    .await;
    let at = through_provider(&app, &provider, &id, "eve@example.com", |u| u).await;
    let late = login_code(callback(&at).await).await;
    app.clock.advance(chrono::Duration::seconds(61));
    assert_problem(
        exchange(&app, &late).await,
        StatusCode::UNAUTHORIZED,
        "login_code_invalid",
    )
    .await;
    app.clock.advance(chrono::Duration::seconds(-61));

    // Another browser (no cookie) cannot finish the attempt.
    let mut at = through_provider(&app, &provider, &id, "eve@example.com", |u| u).await;
    at.warden_cookies = String::new();
    assert_problem(
        callback(&at).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "sso_attempt_invalid",
    )
    .await;

    // An answer naming another issuer (RFC 9207 mix-up defence).
    let mut at = through_provider(&app, &provider, &id, "eve@example.com", |u| u).await;
    at.url = at.url.replace(
        &urlencoding::encode(&provider.issuer()).into_owned(),
        "https%3A%2F%2Fevil.test",
    );
    assert_problem(
        callback(&at).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "sso_issuer_mismatch",
    )
    .await;

    // An ID token issued for another attempt's nonce.
    let swap_nonce = |url: String| {
        let mut url = reqwest::Url::parse(&url).expect("url");
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    if k == "nonce" {
                        "another-attempts-nonce".to_string()
                    } else {
                        v.to_string()
                    },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    };
    let at = through_provider(&app, &provider, &id, "eve@example.com", swap_nonce).await;
    assert_problem(
        callback(&at).await,
        StatusCode::UNAUTHORIZED,
        "sso_token_invalid",
    )
    .await;

    // An ID token that expired (by Warden's clock) before it was presented.
    let mut short_lived = Provider::start().await;
    short_lived.id_token_seconds = Some(60);
    short_lived.restart().await;
    let admin = app.log_in("root@example.com").await;
    let body = json!({
        "name": "Short", "issuer": short_lived.issuer(), "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    });
    let created = app
        .post("/v1/admin/identity-providers", body, Some(&admin))
        .await;
    let short_id = created.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let at = through_provider(&app, &short_lived, &short_id, "eve@example.com", |u| u).await;
    app.clock.advance(chrono::Duration::minutes(5));
    assert_problem(
        callback(&at).await,
        StatusCode::UNAUTHORIZED,
        "sso_token_invalid",
    )
    .await;
    app.clock.advance(chrono::Duration::minutes(-5));

    // An ID token changed after it was signed (it now names someone else).
    let at = through_provider(&app, &provider, &id, "eve@example.com", |u| u).await;
    provider.tamper_next_token().await;
    assert_problem(
        callback(&at).await,
        StatusCode::UNAUTHORIZED,
        "sso_token_invalid",
    )
    .await;
    let nobody: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT account_id FROM email_reservations LIMIT 1 OFFSET 2")
            .fetch_optional(&app.pool)
            .await
            .expect("reservations");
    assert!(nobody.is_none(), "only root and eve have accounts");

    assert_eq!(
        refusals(&app).await,
        [
            "attempt_used",
            "browser_mismatch",
            "issuer_mismatch",
            "nonce_mismatch",
            "token_invalid",
            "token_invalid"
        ]
    );
    app.caught_up().await;
    let admin = app.log_in("root@example.com").await;
    let log: Value = app
        .get(
            "/v1/audit?action=identity_provider.sign_in_refused",
            Some(&admin),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(log["entries"].as_array().map(Vec::len), Some(6), "{log}");
}

#[tokio::test]
async fn a_provider_that_rotates_its_keys_still_signs_people_in() {
    let app = spawn_app().await;
    let mut provider = Provider::start().await;
    let id = configured(&app, &provider, json!({ "create_accounts": true })).await;
    let before = signed_in(&app, &provider, &id, "kai@example.com").await;
    provider.restart().await;
    let after = signed_in(&app, &provider, &id, "kai@example.com").await;
    assert_eq!(me(&app, &before).await["id"], me(&app, &after).await["id"]);
}

/// Signs out at the provider, as the person would on its own pages.
async fn sign_out_at(provider: &Provider, cookies: &str) {
    let client = browser();
    let end = format!("{}/session/end", provider.issuer());
    let page = client
        .get(&end)
        .header("cookie", cookies)
        .send()
        .await
        .expect("end");
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.expect("page");
    let xsrf = page
        .split(r#"name="xsrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the logout form's xsrf");
    let confirm = client
        .post(format!("{end}/confirm"))
        .header("cookie", cookies)
        .form(&[("xsrf", xsrf), ("logout", "yes")])
        .send()
        .await
        .expect("confirm");
    assert!(confirm.status().is_redirection() || confirm.status().is_success());
}

#[tokio::test]
async fn the_provider_ends_its_session_on_every_warden_process_through_back_channel_logout() {
    let app = spawn_app().await;
    let sibling = app.spawn_sibling().await;
    let mut provider = Provider::start().await;
    let id = configured(&app, &provider, json!({ "create_accounts": true })).await;
    let backchannel = format!("/v1/sso/{id}/backchannel-logout");
    provider.backchannel = Some(app.url(&backchannel));
    provider.restart().await;

    // Two provider sessions (two browsers) of the same person.
    let at = through_provider(&app, &provider, &id, "noor@example.com", |u| u).await;
    let code = login_code(callback(&at).await).await;
    let ending: Value = exchange(&app, &code).await.json().await.expect("json");
    let ending = ending["token"].as_str().expect("token").to_string();
    let staying = signed_in(&app, &provider, &id, "noor@example.com").await;
    for process in [&app, &sibling] {
        assert_eq!(
            process.get("/v1/me", Some(&ending)).await.status(),
            StatusCode::OK
        );
    }

    sign_out_at(&provider, &at.provider_cookies).await;
    // The provider waited for Warden's answer: no process accepts the session any more.
    for process in [&app, &sibling] {
        let refused = process.get("/v1/me", Some(&ending)).await;
        assert_problem(refused, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        assert_eq!(
            process.get("/v1/me", Some(&staying)).await.status(),
            StatusCode::OK
        );
    }
    app.caught_up().await;
    let history: Value = app
        .get("/v1/me/sessions", Some(&staying))
        .await
        .json()
        .await
        .expect("json");
    let reasons: Vec<&str> = history["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["end_reason"].as_str())
        .collect();
    assert_eq!(reasons, ["provider_logout"]);

    // A token the provider did not sign ends nothing.
    let forged = app
        .client
        .post(app.url(&backchannel))
        .form(&[(
            "logout_token",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJub29yQGV4YW1wbGUuY29tIn0.c2ln",
        )])
        .send()
        .await
        .expect("forged");
    assert_problem(forged, StatusCode::BAD_REQUEST, "logout_token_invalid").await;
    assert_eq!(
        app.get("/v1/me", Some(&staying)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_locked_account_does_not_sign_in_through_a_provider_either() {
    let app = spawn_app().await;
    let provider = Provider::start().await;
    let id = configured(&app, &provider, json!({ "link_by_verified_email": true })).await;
    app.register("lou@example.com").await;
    for _ in 0..10 {
        app.log_in_with("lou@example.com", "not the password").await;
    }
    let at = through_provider(&app, &provider, &id, "lou@example.com", |u| u).await;
    let locked = assert_problem(callback(&at).await, StatusCode::LOCKED, "account_locked").await;
    assert!(locked.get("detail").is_some());
    assert_eq!(refusals(&app).await, ["account_unavailable"]);
    // The refused sign-in linked nothing: once the lock has passed, the link is made then.
    app.clock.advance(chrono::Duration::minutes(2));
    let token = signed_in(&app, &provider, &id, "lou@example.com").await;
    assert_eq!(me(&app, &token).await["email"], "lou@example.com");
    let linked: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'IdentityLinked'->>'via' FROM events
         WHERE event_type = 'account.identity.linked'",
    )
    .fetch_all(&app.pool)
    .await
    .expect("links");
    assert_eq!(linked, ["verified_email"]);
}
