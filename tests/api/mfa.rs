//! Multi-factor authentication end to end: enrollment checked by real authenticator
//! implementations (oathtool, pyotp) and a real QR decoder, the second step, replay and
//! single use under concurrency, lock-out and support unblock.

use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret};
use warden::adapters::totp::code_at;

use crate::helpers::{assert_problem, count, spawn_app, statuses_of, TestApp, PASSWORD};

pub(crate) struct Enrolled {
    pub(crate) secret: String,
    recovery_codes: Vec<String>,
    enrollment: Value,
}

pub fn code(secret: &str, at: DateTime<Utc>) -> String {
    let bytes = Secret::Encoded(secret.to_string())
        .to_bytes()
        .expect("base32");
    code_at(Algorithm::SHA1, 6, 30, &bytes, at.timestamp() as u64).expect("code")
}

/// The code `oathtool` computes for `secret` at `at`.
fn oathtool(secret: &str, at: DateTime<Utc>) -> String {
    let now = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let output = Command::new("oathtool")
        .args(["--totp", "-b", "--now", &now, secret])
        .output()
        .expect("oathtool runs (scripts/test installs it)");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

/// The code Python's pyotp computes for `secret` at `at`.
fn pyotp(secret: &str, at: DateTime<Utc>) -> String {
    let output = Command::new("python3")
        .args([
            "-c",
            "import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))",
            secret,
            &at.timestamp().to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "pyotp (scripts/test installs it): {output:?}"
    );
    String::from_utf8(output.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

async fn enroll(app: &TestApp, session: &str) -> Enrolled {
    let response = app.post("/v1/me/mfa/totp", json!({}), Some(session)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let enrollment: Value = response.json().await.expect("json");
    Enrolled {
        secret: enrollment["secret"].as_str().expect("secret").to_string(),
        recovery_codes: enrollment["recovery_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_string())
            .collect(),
        enrollment,
    }
}

/// Enrols TOTP for the session's account and confirms it with the current code.
async fn turn_totp_on(app: &TestApp, session: &str) -> Enrolled {
    let enrolled = enroll(app, session).await;
    let confirm = app
        .post(
            "/v1/me/mfa/totp/confirm",
            json!({ "code": code(&enrolled.secret, app.clock_now()) }),
            Some(session),
        )
        .await;
    assert_eq!(confirm.status(), StatusCode::NO_CONTENT);
    enrolled
}

/// An account with TOTP on, and a session of it.
pub(crate) async fn totp_account(app: &TestApp, email: &str) -> (String, Enrolled) {
    let session = app.signed_up(email).await;
    let enrolled = turn_totp_on(app, &session).await;
    // The confirming step is used; later logins need the next one.
    app.clock.advance(Duration::seconds(30));
    (session, enrolled)
}

pub(crate) async fn challenge(app: &TestApp, email: &str) -> String {
    let response = app.log_in_with(email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "mfa_required");
    assert!(
        body.get("token").is_none(),
        "no session before the second step"
    );
    body["challenge"].as_str().expect("challenge").to_string()
}

pub(crate) async fn second_step(
    app: &TestApp,
    challenge: &str,
    method: &str,
    code: &str,
) -> reqwest::Response {
    app.api()
        .second_step(&crate::client::SecondStep {
            challenge,
            method,
            code,
        })
        .await
}

#[tokio::test]
async fn enrollment_is_confirmed_by_an_authenticator_app_and_then_required_at_login() {
    let app = spawn_app().await;
    let session = app.signed_up("totp@example.com").await;
    let enrolled = enroll(&app, &session).await;
    assert_eq!(enrolled.secret.len(), 32, "160 bits in base32");
    assert_eq!(enrolled.recovery_codes.len(), 10);
    assert_eq!(
        enrolled.enrollment["otpauth_uri"],
        format!(
            "otpauth://totp/Warden:totp%40example.com?secret={}&issuer=Warden&algorithm=SHA1&digits=6&period=30",
            enrolled.secret
        )
    );
    let me: Value = app.api_as(&session).me().await.json().await.expect("json");
    assert_eq!(
        me["mfa"],
        json!({ "methods": [], "totp_pending": true, "recovery_codes_remaining": 0, "required_by": [] })
    );

    let now = app.clock_now();
    let wrong = app
        .post(
            "/v1/me/mfa/totp/confirm",
            json!({ "code": "000000" }),
            Some(&session),
        )
        .await;
    if code(&enrolled.secret, now) != "000000" {
        assert_problem(
            wrong,
            StatusCode::UNPROCESSABLE_ENTITY,
            "confirmation_code_invalid",
        )
        .await;
    }
    let malformed = app
        .post(
            "/v1/me/mfa/totp/confirm",
            json!({ "code": "12ab56" }),
            Some(&session),
        )
        .await;
    assert_problem(
        malformed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_code_format",
    )
    .await;
    let from_oathtool = oathtool(&enrolled.secret, now);
    assert_eq!(from_oathtool, code(&enrolled.secret, now));
    let confirmed = app
        .post(
            "/v1/me/mfa/totp/confirm",
            json!({ "code": from_oathtool }),
            Some(&session),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);
    let me: Value = app.api_as(&session).me().await.json().await.expect("json");
    assert_eq!(
        me["mfa"],
        json!({ "methods": ["totp"], "totp_pending": false, "recovery_codes_remaining": 10, "required_by": [] })
    );

    // The code that confirmed enrollment is spent.
    let first = challenge(&app, "totp@example.com").await;
    let replay = second_step(&app, &first, "totp", &from_oathtool).await;
    assert_problem(replay, StatusCode::UNAUTHORIZED, "mfa_code_invalid").await;

    app.clock.advance(Duration::seconds(30));
    let next = pyotp(&enrolled.secret, app.clock_now());
    let response = second_step(&app, &first, "totp", &next).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    let token = body["token"].as_str().expect("token").to_string();
    let sessions: Value = app
        .get("/v1/me/sessions", Some(&token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(sessions["sessions"][0]["method"], "totp");
    assert_eq!(sessions["sessions"][0]["device"], "test laptop");

    // A challenge is single use, and the same code on a fresh challenge is a replay.
    let used = second_step(&app, &first, "totp", &next).await;
    assert_problem(used, StatusCode::UNAUTHORIZED, "challenge_invalid").await;
    let fresh = challenge(&app, "totp@example.com").await;
    let replay = second_step(&app, &fresh, "totp", &next).await;
    assert_problem(replay, StatusCode::UNAUTHORIZED, "mfa_code_invalid").await;
}

#[tokio::test]
async fn the_qr_code_decodes_to_the_exact_otpauth_uri() {
    let app = spawn_app().await;
    let session = app.signed_up("qr@example.com").await;
    let enrolled = enroll(&app, &session).await;
    let dir = std::env::temp_dir().join(format!("warden-qr-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let svg = dir.join("qr.svg");
    let png = dir.join("qr.png");
    std::fs::write(&svg, enrolled.enrollment["qr_svg"].as_str().expect("svg")).expect("written");
    let converted = Command::new("rsvg-convert")
        .args(["-w", "400", "-o"])
        .arg(&png)
        .arg(&svg)
        .status()
        .expect("rsvg-convert runs (scripts/test installs librsvg2-bin)");
    assert!(converted.success());
    let decoded = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&png)
        .output()
        .expect("zbarimg runs (scripts/test installs zbar-tools)");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        String::from_utf8(decoded.stdout).expect("utf8").trim(),
        enrolled.enrollment["otpauth_uri"].as_str().expect("uri")
    );
}

#[tokio::test]
async fn a_recovery_code_logs_in_once() {
    let app = spawn_app().await;
    let (_, enrolled) = totp_account(&app, "recover@example.com").await;
    let first = challenge(&app, "recover@example.com").await;
    let typed = enrolled.recovery_codes[3].to_uppercase().replace('-', " ");
    let response = second_step(&app, &first, "recovery_code", &typed).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    let token = body["token"].as_str().expect("token");
    let me: Value = app.api_as(token).me().await.json().await.expect("json");
    assert_eq!(me["mfa"]["recovery_codes_remaining"], 9);

    let again = challenge(&app, "recover@example.com").await;
    let reused = second_step(&app, &again, "recovery_code", &enrolled.recovery_codes[3]).await;
    assert_problem(reused, StatusCode::UNAUTHORIZED, "mfa_code_invalid").await;
}

#[tokio::test]
async fn one_recovery_code_presented_to_twenty_challenges_at_once_opens_one_session() {
    let app = spawn_app().await;
    let (_, enrolled) = totp_account(&app, "race@example.com").await;
    let mut challenges = Vec::new();
    for _ in 0..20 {
        challenges.push(challenge(&app, "race@example.com").await);
    }
    let code = &enrolled.recovery_codes[0];
    let attempts = challenges
        .iter()
        .map(|c| second_step(&app, c, "recovery_code", code));
    let statuses = statuses_of(attempts).await;
    let created = count(&statuses, StatusCode::CREATED);
    let refused = count(&statuses, StatusCode::UNAUTHORIZED);
    assert_eq!((created, refused), (1, 19), "{statuses:?}");
}

#[tokio::test]
async fn one_totp_code_presented_to_two_challenges_at_once_opens_one_session() {
    let app = spawn_app().await;
    let (_, enrolled) = totp_account(&app, "twice@example.com").await;
    let a = challenge(&app, "twice@example.com").await;
    let b = challenge(&app, "twice@example.com").await;
    let now_code = code(&enrolled.secret, app.clock_now());
    let (ra, rb) = tokio::join!(
        second_step(&app, &a, "totp", &now_code),
        second_step(&app, &b, "totp", &now_code)
    );
    let mut statuses = [ra.status(), rb.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::UNAUTHORIZED]);
}

#[tokio::test]
async fn wrong_codes_end_a_challenge_after_five_and_lock_the_account_after_twenty() {
    let app = spawn_app().await;
    let (_, enrolled) = totp_account(&app, "wrong@example.com").await;
    let right = code(&enrolled.secret, app.clock_now());
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for round in 0..4 {
        let challenge = challenge(&app, "wrong@example.com").await;
        for _ in 0..5 {
            let response = second_step(&app, &challenge, "totp", wrong).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        if round < 3 {
            let spent = second_step(&app, &challenge, "totp", &right).await;
            assert_problem(spent, StatusCode::UNAUTHORIZED, "challenge_invalid").await;
        }
    }
    let locked = app.log_in_with("wrong@example.com", PASSWORD).await;
    assert_problem(locked, StatusCode::LOCKED, "account_locked").await;

    let admin = app.admin("support@example.com").await;
    let user: Value = sqlx::query_scalar::<_, String>(
        "SELECT aggregate_id FROM events WHERE event_type = 'account.mfa.locked_out'",
    )
    .fetch_one(&app.pool)
    .await
    .map(Value::String)
    .expect("locked account");
    let user = user.as_str().expect("id");
    let not_admin = app.signed_up("nobody@example.com").await;
    let refused = app
        .post(
            &format!("/v1/admin/accounts/{user}/unlock"),
            json!({}),
            Some(&not_admin),
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "admin_required").await;
    let unlocked = app
        .post(
            &format!("/v1/admin/accounts/{user}/unlock"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(unlocked.status(), StatusCode::NO_CONTENT);
    let challenge = challenge(&app, "wrong@example.com").await;
    let response = second_step(&app, &challenge, "totp", &right).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn turning_totp_off_needs_the_password_or_a_current_code() {
    let app = spawn_app().await;
    let (session, enrolled) = totp_account(&app, "off@example.com").await;
    let delete = |body: Value| {
        app.client
            .delete(app.url("/v1/me/mfa/totp"))
            .bearer_auth(&session)
            .json(&body)
            .send()
    };
    let bare = delete(json!({})).await.expect("sent");
    assert_problem(
        bare,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reauthentication_required",
    )
    .await;
    let wrong = delete(json!({ "password": "not it" })).await.expect("sent");
    assert_problem(wrong, StatusCode::FORBIDDEN, "reauthentication_failed").await;
    let by_code = delete(json!({ "code": code(&enrolled.secret, app.clock_now()) }))
        .await
        .expect("sent");
    assert_eq!(by_code.status(), StatusCode::NO_CONTENT);
    let login = app.log_in_with("off@example.com", PASSWORD).await;
    assert_eq!(
        login.status(),
        StatusCode::CREATED,
        "no second step any more"
    );
    let again = delete(json!({ "password": PASSWORD })).await.expect("sent");
    assert_problem(again, StatusCode::CONFLICT, "totp_not_enabled").await;
}

#[tokio::test]
async fn new_recovery_codes_replace_the_old_ones() {
    let app = spawn_app().await;
    let (session, enrolled) = totp_account(&app, "fresh@example.com").await;
    let response = app
        .post(
            "/v1/me/mfa/recovery-codes",
            json!({ "code": code(&enrolled.secret, app.clock_now()) }),
            Some(&session),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    let fresh = body["recovery_codes"][0]
        .as_str()
        .expect("code")
        .to_string();
    let old = challenge(&app, "fresh@example.com").await;
    let refused = second_step(&app, &old, "recovery_code", &enrolled.recovery_codes[0]).await;
    assert_problem(refused, StatusCode::UNAUTHORIZED, "mfa_code_invalid").await;
    let accepted = second_step(&app, &old, "recovery_code", &fresh).await;
    assert_eq!(accepted.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn support_removes_a_lost_authenticator_and_the_user_enrols_again() {
    let app = spawn_app().await;
    let (session, _) = totp_account(&app, "lost@example.com").await;
    let me: Value = app.api_as(&session).me().await.json().await.expect("json");
    let id = me["id"].as_str().expect("id").to_string();
    let admin = app.admin("help@example.com").await;
    let reset = app
        .post(
            &format!("/v1/admin/accounts/{id}/mfa-reset"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.api_as(&session).me().await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let token = app.log_in("lost@example.com").await;
    let me: Value = app.api_as(&token).me().await.json().await.expect("json");
    assert_eq!(me["mfa"]["methods"], json!([]));
    let enrolled = enroll(&app, &token).await;
    assert_eq!(enrolled.recovery_codes.len(), 10);
}

#[tokio::test]
async fn no_totp_secret_or_recovery_code_is_stored_in_plaintext() {
    let app = spawn_app().await;
    let (_, enrolled) = totp_account(&app, "sealed@example.com").await;
    let challenge = challenge(&app, "sealed@example.com").await;
    second_step(
        &app,
        &challenge,
        "recovery_code",
        &enrolled.recovery_codes[1],
    )
    .await;
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text || metadata::text FROM events
         UNION ALL SELECT payload::text FROM aggregate_snapshots
         UNION ALL SELECT challenge_hash FROM mfa_challenges_v1",
    )
    .fetch_all(&app.pool)
    .await
    .expect("dump");
    let dump = dump.join("\n");
    assert!(dump.contains("TotpEnrolmentStarted"));
    let mut secrets = vec![
        enrolled.secret.clone(),
        enrolled.secret.to_lowercase(),
        challenge.clone(),
    ];
    for code in &enrolled.recovery_codes {
        secrets.push(code.clone());
        secrets.push(code.replace('-', ""));
    }
    for secret in secrets {
        assert!(!dump.contains(&secret), "{secret} stored in plaintext");
    }
}

/// The six-digit code standing alone on a line of the newest mail.
async fn mailed_code(app: &TestApp) -> String {
    let mails = app.mails_about("Your Warden code").await;
    let mail = mails.last().expect("a mail");
    mail.lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .expect("a six-digit code on its own line")
        .to_string()
}

fn other_than(code: &str) -> &'static str {
    if code == "000000" {
        "111111"
    } else {
        "000000"
    }
}

#[tokio::test]
async fn emailed_codes_are_turned_on_with_a_mailed_code_and_used_at_login() {
    let app = spawn_app().await;
    let session = app.signed_up("mailcode@example.com").await;
    let started = app
        .post("/v1/me/mfa/email", json!({}), Some(&session))
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let code = mailed_code(&app).await;
    let wrong = app
        .post(
            "/v1/me/mfa/email/confirm",
            json!({ "code": other_than(&code) }),
            Some(&session),
        )
        .await;
    assert_problem(
        wrong,
        StatusCode::UNPROCESSABLE_ENTITY,
        "confirmation_code_invalid",
    )
    .await;
    let right = app
        .post(
            "/v1/me/mfa/email/confirm",
            json!({ "code": code }),
            Some(&session),
        )
        .await;
    assert_eq!(right.status(), StatusCode::NO_CONTENT);
    let me: Value = app.api_as(&session).me().await.json().await.expect("json");
    assert_eq!(me["mfa"]["methods"], json!(["email"]));

    let response = app.log_in_with("mailcode@example.com", PASSWORD).await;
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["methods"], json!(["email"]));
    let login = body["challenge"].as_str().expect("challenge").to_string();
    let sent = app
        .post(
            "/v1/sessions/mfa/email-code",
            json!({ "challenge": login }),
            None,
        )
        .await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let login_code = mailed_code(&app).await;
    let response = second_step(&app, &login, "email", &login_code).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    let token = body["token"].as_str().expect("token").to_string();
    let sessions: Value = app
        .get("/v1/me/sessions", Some(&token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(sessions["sessions"][0]["method"], "email");

    // Single use, and bound to its challenge.
    let reused = second_step(&app, &login, "email", &login_code).await;
    assert_problem(reused, StatusCode::UNAUTHORIZED, "challenge_invalid").await;
    let other = challenge(&app, "mailcode@example.com").await;
    let elsewhere = second_step(&app, &other, "email", &login_code).await;
    assert_problem(elsewhere, StatusCode::UNAUTHORIZED, "mfa_code_invalid").await;

    let off = app
        .client
        .delete(app.url("/v1/me/mfa/email"))
        .bearer_auth(&session)
        .json(&json!({ "password": "not it" }))
        .send()
        .await
        .expect("sent");
    assert_problem(off, StatusCode::FORBIDDEN, "reauthentication_failed").await;
    let off = app
        .client
        .delete(app.url("/v1/me/mfa/email"))
        .bearer_auth(&session)
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .expect("sent");
    assert_eq!(off.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.log_in_with("mailcode@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn an_emailed_enrollment_code_allows_five_tries_and_ten_minutes() {
    let app = spawn_app().await;
    let session = app.signed_up("tries@example.com").await;
    app.post("/v1/me/mfa/email", json!({}), Some(&session))
        .await;
    let code = mailed_code(&app).await;
    for _ in 0..5 {
        let wrong = app
            .post(
                "/v1/me/mfa/email/confirm",
                json!({ "code": other_than(&code) }),
                Some(&session),
            )
            .await;
        assert_problem(
            wrong,
            StatusCode::UNPROCESSABLE_ENTITY,
            "confirmation_code_invalid",
        )
        .await;
    }
    let spent = app
        .post(
            "/v1/me/mfa/email/confirm",
            json!({ "code": code }),
            Some(&session),
        )
        .await;
    assert_problem(
        spent,
        StatusCode::UNPROCESSABLE_ENTITY,
        "confirmation_code_invalid",
    )
    .await;

    app.post("/v1/me/mfa/email", json!({}), Some(&session))
        .await;
    let fresh = mailed_code(&app).await;
    app.clock.advance(Duration::minutes(11));
    let late = app
        .post(
            "/v1/me/mfa/email/confirm",
            json!({ "code": fresh }),
            Some(&session),
        )
        .await;
    assert_problem(
        late,
        StatusCode::UNPROCESSABLE_ENTITY,
        "confirmation_code_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_locked_out_user_asks_support_and_an_approval_unlocks() {
    let app = spawn_app().await;
    app.register("stuck@example.com").await;
    for _ in 0..10 {
        app.log_in_with("stuck@example.com", "wrong password").await;
    }
    let locked = app.log_in_with("stuck@example.com", PASSWORD).await;
    assert_problem(locked, StatusCode::LOCKED, "account_locked").await;

    let ask = |email: &str, reason: &str| {
        app.post(
            "/v1/access-requests",
            json!({ "email": email, "reason": reason }),
            None,
        )
    };
    assert_eq!(
        ask("ghost@example.com", "let me in").await.status(),
        StatusCode::ACCEPTED
    );
    assert_problem(
        ask("stuck@example.com", "  ").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_reason",
    )
    .await;
    assert_eq!(
        ask("stuck@example.com", "I mistyped my password")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        ask("stuck@example.com", "please").await.status(),
        StatusCode::ACCEPTED
    );

    let user = app.signed_up("bystander@example.com").await;
    let refused = app.get("/v1/admin/access-requests", Some(&user)).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "admin_required").await;

    let admin = app.admin("desk@example.com").await;
    let listed: Value = app
        .get("/v1/admin/access-requests?status=open", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    let requests = listed["access_requests"].as_array().expect("array");
    assert_eq!(requests.len(), 1, "one open request per account");
    assert_eq!(requests[0]["email"], "stuck@example.com");
    assert_eq!(requests[0]["reason"], "I mistyped my password");
    let id = requests[0]["id"].as_str().expect("id").to_string();

    let approved = app
        .post(
            &format!("/v1/admin/access-requests/{id}/approve"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(approved.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.log_in_with("stuck@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
    let again = app
        .post(
            &format!("/v1/admin/access-requests/{id}/deny"),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_problem(again, StatusCode::NOT_FOUND, "access_request_not_found").await;
    let listed: Value = app
        .get("/v1/admin/access-requests", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["access_requests"][0]["status"], "approved");
}

#[tokio::test]
async fn the_state_at_an_instant_shows_mfa_only_from_when_it_was_turned_on() {
    let app = spawn_app().await;
    let session = app.signed_up("later.mfa@example.com").await;
    let me: Value = app.api_as(&session).me().await.json().await.expect("json");
    let id = me["id"].as_str().expect("id").to_string();
    app.clock.advance(Duration::seconds(60));
    let before_mfa = app.clock_now();
    app.clock.advance(Duration::seconds(60));
    turn_totp_on(&app, &session).await;
    app.clock.advance(Duration::seconds(60));
    let after_mfa = app.clock_now();
    let admin = app.admin("auditor@example.com").await;

    let state_at = |at: DateTime<Utc>| {
        let app = &app;
        let admin = admin.clone();
        let id = id.clone();
        async move {
            let response = app
                .get(
                    &format!(
                        "/v1/accounts/{id}/state?at={}",
                        at.to_rfc3339().replace('+', "%2B")
                    ),
                    Some(&admin),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.expect("json")
        }
    };
    let before = state_at(before_mfa).await;
    assert_eq!(before["mfa_methods"], json!([]), "{before}");
    assert_eq!(before["recovery_codes_remaining"], 0);
    assert_eq!(before["live_sessions"], 1);
    let after = state_at(after_mfa).await;
    assert_eq!(after["mfa_methods"], json!(["totp"]), "{after}");
    assert_eq!(after["recovery_codes_remaining"], 10);
}
