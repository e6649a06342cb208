//! The account pages' boundary, from outside: a post is taken only from Warden's own pages
//! (same origin and the visitor's CSRF token), the session cookie works on `/account` only and
//! only as a session, and a revoked session is signed out of the pages at once.

use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};

use crate::helpers::{assert_problem, spawn_app, TestApp, PASSWORD};

fn browser() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// The value of the cookie `name` that `response` sets.
fn cookie_set(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_string())
        .filter(|v| !v.is_empty())
}

/// The CSRF token a first visit to the sign-in page hands out.
async fn visit(app: &TestApp) -> String {
    let page = browser()
        .get(app.url("/account/sign-in"))
        .send()
        .await
        .expect("sign-in page");
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    cookie_set(&page, "__Host-warden-csrf").expect("a CSRF cookie")
}

async fn sign_in(app: &TestApp, csrf: &str, form: &str, origin: &str, site: &str) -> Response {
    browser()
        .post(app.url("/account/sign-in"))
        .header(COOKIE, format!("__Host-warden-csrf={csrf}"))
        .header(ORIGIN, origin)
        .header("sec-fetch-site", site)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .expect("sign-in post")
}

#[tokio::test]
async fn a_post_is_taken_only_from_the_pages_own_origin_with_the_visitors_token() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let csrf = visit(&app).await;
    let own = app.address.clone();
    let password = urlencoding::encode(PASSWORD);
    let good = format!("csrf={csrf}&email=ada%40example.com&password={password}");
    let no_token = format!("email=ada%40example.com&password={password}");
    let wrong_token = format!(
        "csrf=0123456789abcdef0123456789abcdef&email=ada%40example.com&password={password}"
    );

    let refusals = [
        (good.as_str(), "https://evil.example", "same-origin"),
        (good.as_str(), own.as_str(), "cross-site"),
        (good.as_str(), own.as_str(), "same-site"),
        (good.as_str(), "null", "same-origin"),
        (no_token.as_str(), own.as_str(), "same-origin"),
        (wrong_token.as_str(), own.as_str(), "same-origin"),
    ];
    for (form, origin, site) in refusals {
        let refused = sign_in(&app, &csrf, form, origin, site).await;
        assert!(cookie_set(&refused, "__Host-warden-session").is_none());
        assert_problem(refused, StatusCode::FORBIDDEN, "cross_site_request").await;
    }

    let signed_in = sign_in(&app, &csrf, &good, &own, "same-origin").await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()[LOCATION], "/account/security");
    let set = signed_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-warden-session="))
        .expect("a session cookie")
        .to_string();
    for part in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
}

#[tokio::test]
async fn the_session_cookie_works_on_the_pages_only_as_a_session_and_not_after_a_revocation() {
    let app = spawn_app().await;
    let session = app.signed_up("ada@example.com").await;
    let security = |token: &str| {
        browser()
            .get(app.url("/account/security"))
            .header(COOKIE, format!("__Host-warden-session={token}"))
            .send()
    };
    let page = security(&session).await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("html").contains("ada@example.com"));

    // /v1 is bearer-only: the cookie is nobody there.
    let me = browser()
        .get(app.url("/v1/me"))
        .header(COOKIE, format!("__Host-warden-session={session}"))
        .send()
        .await
        .expect("me");
    assert_problem(me, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // An API token is not a page session.
    let created: serde_json::Value = app
        .post(
            "/v1/me/tokens",
            serde_json::json!({ "name": "script", "password": PASSWORD }),
            Some(&session),
        )
        .await
        .json()
        .await
        .expect("json");
    let api_token = created["token"].as_str().expect("token");
    let refused = security(api_token).await.expect("page");
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    assert_eq!(refused.headers()[LOCATION], "/account/sign-in");

    // Logged out through the API: the pages sign the visitor out on the next request.
    let out = app.delete("/v1/sessions/current", &session).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let after = security(&session).await.expect("page");
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(after.headers()[LOCATION], "/account/sign-in");
}
