//! Fault tests against the real `warden` binary: killed with SIGKILL under load, and its
//! PostgreSQL restarted under load. Nothing acknowledged may be lost or doubled, and a client
//! never gets a 2xx for a write that was not kept.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::process::Command;
use uuid::Uuid;

use crate::helpers::settle;
use crate::helpers::{fresh_database, PASSWORD};
pub(crate) use crate::processes::{call, hold_the_horizon, Cluster, Server};

/// What the load saw: registrations and logins answered 2xx, and how many requests failed
/// without an answer.
#[derive(Default)]
struct Acknowledged {
    accounts: Vec<(String, String)>,
    sessions: Vec<(String, String)>,
    unanswered: usize,
    refused: usize,
    /// Statuses of refused requests.
    refusals: Vec<u16>,
}

/// Clients register and log in as fast as they can until `stop`.
fn load(
    base: String,
    clients: usize,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Acknowledged>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let base = base.clone();
            let stop = stop.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("client");
                while !stop.load(Ordering::Relaxed) {
                    let email = format!("{}@example.com", Uuid::new_v4().simple());
                    let registered = client
                        .post(format!("{base}/v1/accounts"))
                        .json(&json!({ "email": email, "password": PASSWORD }))
                        .send()
                        .await;
                    let account = match registered {
                        Ok(r) if r.status() == StatusCode::CREATED => {
                            let body: Value = r.json().await.unwrap_or(Value::Null);
                            let id = body["id"].as_str().unwrap_or_default().to_string();
                            seen.lock()
                                .expect("lock")
                                .accounts
                                .push((id.clone(), email.clone()));
                            id
                        }
                        Ok(r) => {
                            assert!(!r.status().is_success(), "a 2xx without a body");
                            {
                                let mut seen = seen.lock().expect("lock");
                                seen.refused += 1;
                                seen.refusals.push(r.status().as_u16());
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                        Err(_) => {
                            seen.lock().expect("lock").unanswered += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    let login = client
                        .post(format!("{base}/v1/sessions"))
                        .json(&json!({ "email": email, "password": PASSWORD }))
                        .send()
                        .await;
                    match login {
                        Ok(r) if r.status() == StatusCode::CREATED => {
                            let body: Value = r.json().await.unwrap_or(Value::Null);
                            let token = body["token"].as_str().unwrap_or_default().to_string();
                            seen.lock().expect("lock").sessions.push((account, token));
                        }
                        Ok(r) => {
                            let mut seen = seen.lock().expect("lock");
                            seen.refused += 1;
                            seen.refusals.push(r.status().as_u16());
                        }
                        Err(_) => seen.lock().expect("lock").unanswered += 1,
                    }
                }
            })
        })
        .collect()
}

/// Every acknowledged registration and login is in the log exactly once and in the views: the
/// session works, the audit log and the session history have it, the chain verifies, and a
/// replay of every view is identical.
async fn assert_nothing_acknowledged_was_lost(server: &Server, seen: &Acknowledged) {
    let pool = sqlx::PgPool::connect(&server.database_url)
        .await
        .expect("pool");
    settle(&pool).await;
    let registered: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE event_type = 'account.registered'",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    let unique: HashSet<&String> = registered.iter().collect();
    assert_eq!(
        unique.len(),
        registered.len(),
        "no account registered twice"
    );
    for (id, _) in &seen.accounts {
        assert!(
            unique.contains(id),
            "acknowledged account {id} is in the log"
        );
    }
    let started: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'account.session.started'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert!(started as usize >= seen.sessions.len());

    // Views caught up: every acknowledged session works on the restarted server.
    let client = reqwest::Client::new();
    for (account, token) in &seen.sessions {
        let me = client
            .get(server.url("/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .expect("answered");
        assert_eq!(me.status(), StatusCode::OK, "session of {account}");
    }
    let in_history: i64 = sqlx::query_scalar("SELECT count(*) FROM session_history_v1")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(
        in_history, started,
        "every started session is in the history"
    );
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log_v1")
        .fetch_one(&pool)
        .await
        .expect("count");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(audited, events, "every event audited once");

    let key = warden::settings::signing_key_from_base64(&server.signing_key).expect("key");
    warden_projections::audit_chain::sign_head(&pool, &key)
        .await
        .expect("signed");
    let verification = warden_projections::audit_chain::verify(&pool, key.verifying_key())
        .await
        .expect("verified");
    assert!(verification.ok, "{verification:?}");
    assert_eq!(verification.events_checked, events);
    let report = warden_projections::replay::replay(
        &pool,
        server.database_url.parse().expect("url"),
        &warden_projections::all(None),
    )
    .await
    .expect("replayed");
    assert!(report.identical, "{report:?}");
}

/// Waits until the restarted server's projectors have applied every event: the audit log and
/// the chain have one entry per event, the session history and the credentials one row per
/// started session.
async fn caught_up(server: &Server) {
    let pool = sqlx::PgPool::connect(&server.database_url)
        .await
        .expect("pool");
    settle(&pool).await;
    for _ in 0..400 {
        let (events, audited, chained, started, histories, credentials): (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM events),
                    (SELECT count(*) FROM audit_log_v1),
                    (SELECT count(*) FROM audit_chain_v1),
                    (SELECT count(*) FROM events WHERE event_type = 'account.session.started'),
                    (SELECT count(*) FROM session_history_v1),
                    (SELECT count(*) FROM session_credentials_v1)",
        )
        .fetch_one(&pool)
        .await
        .expect("counts");
        if events == audited && events == chained && started == histories && started == credentials
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the views did not catch up after the restart");
}

#[tokio::test]
async fn a_server_killed_under_load_loses_nothing_it_acknowledged() {
    let mut server = Server::new(fresh_database().await);
    server.start().await;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Acknowledged::default()));
    let clients = load(server.url(""), 6, stop.clone(), seen.clone());

    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().await;
    let before_restart = seen.lock().expect("lock").accounts.len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.start().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }
    caught_up(&server).await;

    let seen = std::mem::take(&mut *seen.lock().expect("lock"));
    assert!(
        before_restart > 0,
        "some writes were acknowledged before the kill"
    );
    assert!(
        seen.accounts.len() > before_restart,
        "and after the restart"
    );
    assert!(seen.unanswered > 0, "the kill cut requests off");
    assert_nothing_acknowledged_was_lost(&server, &seen).await;
    println!(
        "crash: {} registrations and {} logins acknowledged, {} requests cut off by the kill, \
         {} refused; every acknowledged write found",
        seen.accounts.len(),
        seen.sessions.len(),
        seen.unanswered,
        seen.refused
    );
    server.kill().await;
}

#[tokio::test]
async fn a_database_restart_answers_503_then_recovers_without_losing_anything() {
    let Some(cluster) = Cluster::create().await else {
        panic!("no PostgreSQL binaries under /usr/lib/postgresql to run a private cluster");
    };
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.url("postgres"))
        .await
        .expect("cluster answers");
    sqlx::query("CREATE DATABASE warden")
        .execute(&mut admin)
        .await
        .expect("database");
    drop(admin);
    let mut server = Server::new(cluster.url("warden"));
    server.start().await;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Acknowledged::default()));
    let clients = load(server.url(""), 4, stop.clone(), seen.clone());
    // Until the load has a session to present while the database is down.
    for _ in 0..200 {
        if !seen.lock().expect("lock").sessions.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    cluster.pg_ctl(&["stop", "-m", "fast", "-w"]).await;
    // While it is down: answers, quickly, as 503 problems; never a hang, never a 500.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    // Each request waits at most for the pool's acquire timeout (5 s), then answers 503.
    let bounded = Duration::from_secs(7);
    let session = seen
        .lock()
        .expect("lock")
        .sessions
        .first()
        .map(|(_, token)| token.clone())
        .expect("a session from before the stop");
    for path in ["/readyz", "/v1/me"] {
        let started = std::time::Instant::now();
        let response = client
            .get(server.url(path))
            .bearer_auth(&session)
            .send()
            .await
            .expect("Warden answers while the database is down");
        assert!(
            started.elapsed() < bounded,
            "{path} answered in {:?}",
            started.elapsed()
        );
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
    }
    let started = std::time::Instant::now();
    let login = client
        .post(server.url("/v1/sessions"))
        .json(&json!({ "email": "nobody@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    assert!(
        started.elapsed() < bounded,
        "login answered in {:?}",
        started.elapsed()
    );
    let status = login.status();
    let problem: Value = login.json().await.expect("a problem document");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(problem["code"], "database_unavailable");

    cluster.pg_ctl(&["start", "-w"]).await;
    let acknowledged_before = seen.lock().expect("lock").accounts.len();
    // The same process recovers: writes are acknowledged again.
    for _ in 0..200 {
        if seen.lock().expect("lock").accounts.len() > acknowledged_before + 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }
    let seen = std::mem::take(&mut *seen.lock().expect("lock"));
    assert!(
        seen.accounts.len() > acknowledged_before + 3,
        "writes succeed again without restarting Warden"
    );
    assert!(
        seen.refusals.iter().all(|s| *s == 503),
        "only 503 while the database was away: {:?}",
        seen.refusals
    );
    caught_up(&server).await;
    assert_nothing_acknowledged_was_lost(&server, &seen).await;
    println!(
        "database restart: {} registrations and {} logins acknowledged, {} refused while it was \
         down, {} without an answer; all found, views caught up, chain verified, replay identical",
        seen.accounts.len(),
        seen.sessions.len(),
        seen.refused,
        seen.unanswered
    );
    server.kill().await;
}

/// Found by the randomized fault run (tests/chaos): while something between Warden and its
/// database accepted connections and closed them at once, the handshake's read of nothing
/// answered 500 `internal_error`. A connection that breaks is the database being away: 503.
#[tokio::test]
async fn connections_closed_during_their_handshake_answer_503_not_500() {
    let mut url = url::Url::parse(&fresh_database().await).expect("a database URL");
    let upstream = url.port().unwrap_or(5432);
    let proxy = crate::proxy::Proxy::start(upstream).await.expect("a proxy");
    url.set_port(Some(proxy.port)).expect("a port");
    let mut server = Server::new(url.to_string());
    server.start().await;
    let client = reqwest::Client::new();
    let credentials = json!({ "email": "handshake@example.com", "password": PASSWORD });
    let (status, _) = call(
        &client,
        reqwest::Method::POST,
        server.url("/v1/accounts"),
        None,
        credentials.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    proxy.cut();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let response = client
            .post(server.url("/v1/sessions"))
            .json(&credentials)
            .send()
            .await
            .expect("Warden answers while its connections are refused");
        let status = response.status();
        let retry_after = response
            .headers()
            .contains_key(reqwest::header::RETRY_AFTER);
        let problem: Value = response.json().await.unwrap_or(Value::Null);
        statuses.push((status.as_u16(), problem["code"].clone(), retry_after));
    }
    assert!(
        statuses
            .iter()
            .all(|(status, code, retry_after)| *status == 503
                && code == "database_unavailable"
                && *retry_after),
        "{statuses:?}"
    );

    proxy.heal();
    let mut logged_in = false;
    for _ in 0..100 {
        let (status, _) = call(
            &client,
            reqwest::Method::POST,
            server.url("/v1/sessions"),
            None,
            credentials.clone(),
        )
        .await;
        if status == StatusCode::CREATED {
            logged_in = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        logged_in,
        "logins work again once the connections are let through"
    );
    server.kill().await;
}

/// The first reset mail in `dir`, once the outbox has delivered it.
async fn reset_mail(dir: &std::path::Path) -> String {
    for _ in 0..400 {
        let mut mails: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        mails.sort();
        let reset = mails
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .find(|mail| mail.contains("Subject: Reset your Warden password"));
        if let Some(mail) = reset {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no reset mail arrived");
}

#[tokio::test]
async fn no_secret_of_a_journey_through_every_feature_reaches_the_database_logs_or_stream() {
    use reqwest::Method;
    let mut server = Server::new(fresh_database().await);
    let log = std::env::temp_dir().join(format!("warden-log-{}.jsonl", Uuid::new_v4()));
    server.log = Some(log.clone());
    server.start().await;
    let client = reqwest::Client::new();
    let url = |path: &str| server.url(path);
    let email = "journey.secret@example.com";
    let (first, second, third) = (
        "first secret passphrase 1",
        "second secret passphrase 2",
        "third secret passphrase 3",
    );
    let wrong = "a wrong guess of the passphrase";
    let pin = "48213579";
    let mut secrets: Vec<String> = vec![first.into(), second.into(), third.into(), wrong.into()];

    let (status, _) = call(
        &client,
        Method::POST,
        url("/v1/accounts"),
        None,
        json!({ "email": email, "password": first, "display_name": "Journey" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    call(
        &client,
        Method::POST,
        url("/v1/sessions"),
        None,
        json!({ "email": email, "password": wrong }),
    )
    .await;
    let (_, login) = call(
        &client,
        Method::POST,
        url("/v1/sessions"),
        None,
        json!({ "email": email, "password": first }),
    )
    .await;
    let session = login["token"].as_str().expect("session").to_string();
    let (_, token) = call(
        &client,
        Method::POST,
        url("/v1/me/tokens"),
        Some(&session),
        json!({ "name": "journey", "password": first }),
    )
    .await;
    let api_token = token["token"].as_str().expect("token").to_string();
    let (status, _) = call(
        &client,
        Method::GET,
        url("/v1/me"),
        Some(&api_token),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &client,
        Method::PUT,
        url("/v1/me/password"),
        Some(&session),
        json!({ "current_password": first, "new_password": second }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    call(
        &client,
        Method::POST,
        url("/v1/password-resets"),
        None,
        json!({ "email": email }),
    )
    .await;
    let reset = crate::helpers::reset_token_in(&reset_mail(&server.mail_dir).await);
    let (status, _) = call(
        &client,
        Method::POST,
        url("/v1/password-resets/confirm"),
        None,
        json!({ "token": reset, "new_password": third }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, login) = call(
        &client,
        Method::POST,
        url("/v1/sessions"),
        None,
        json!({ "email": email, "password": third }),
    )
    .await;
    let second_session = login["token"].as_str().expect("session").to_string();
    let (_, enrollment) = call(
        &client,
        Method::POST,
        url("/v1/me/mfa/totp"),
        Some(&second_session),
        json!({}),
    )
    .await;
    let totp_secret = enrollment["secret"].as_str().expect("secret").to_string();
    let recovery: Vec<String> = enrollment["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    let totp_code = crate::mfa::code(&totp_secret, chrono::Utc::now());
    let (status, _) = call(
        &client,
        Method::POST,
        url("/v1/me/mfa/totp/confirm"),
        Some(&second_session),
        json!({ "code": totp_code }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &client,
        Method::PUT,
        url("/v1/me/pin"),
        Some(&second_session),
        json!({ "pin": pin, "password": third }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &client,
        Method::POST,
        url("/v1/me/pin/verify"),
        Some(&second_session),
        json!({ "pin": pin }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, challenge) = call(
        &client,
        Method::POST,
        url("/v1/sessions"),
        None,
        json!({ "email": email, "password": third }),
    )
    .await;
    let challenge = challenge["challenge"]
        .as_str()
        .expect("challenge")
        .to_string();
    let (status, passed) = call(
        &client,
        Method::POST,
        url("/v1/sessions/mfa"),
        None,
        json!({ "challenge": challenge, "method": "recovery_code", "code": recovery[0] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{passed}");
    let third_session = passed["token"].as_str().expect("session").to_string();

    // An admin reads the whole stream.
    let admin_password = "operator secret passphrase 9";
    let mut create = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "admin",
            "create",
            "--email",
            "ops@example.com",
            "--password-stdin",
        ])
        .env("DATABASE_URL", &server.database_url)
        .env("WARDEN_MASTER_KEY", &server.master_key)
        .env("WARDEN_SIGNING_KEY", &server.signing_key)
        .env("WARDEN_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("warden admin create");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = create.stdin.take().expect("stdin");
        stdin
            .write_all(format!("{admin_password}\n").as_bytes())
            .await
            .expect("written");
    }
    let created = create.wait_with_output().await.expect("finished");
    assert!(created.status.success());
    let (_, admin) = call(
        &client,
        Method::POST,
        url("/v1/sessions"),
        None,
        json!({ "email": "ops@example.com", "password": admin_password }),
    )
    .await;
    let admin = admin["token"].as_str().expect("session").to_string();
    let mut stream = String::new();
    let mut after = "0.0".to_string();
    loop {
        let (status, page) = call(
            &client,
            Method::GET,
            url(&format!("/v1/events?after={after}&limit=1000")),
            Some(&admin),
            Value::Null,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        if page["events"].as_array().is_none_or(Vec::is_empty) {
            break;
        }
        stream.push_str(&page.to_string());
        after = page["next"].as_str().expect("next").to_string();
    }
    assert!(
        stream.contains("account.mfa.passed"),
        "the stream has the journey"
    );

    secrets.extend([
        session.clone(),
        session[4..].to_string(),
        second_session.clone(),
        second_session[4..].to_string(),
        third_session.clone(),
        third_session[4..].to_string(),
        api_token.clone(),
        api_token[4..].to_string(),
        reset.clone(),
        reset[4..].to_string(),
        challenge.clone(),
        challenge[4..].to_string(),
        admin.clone(),
        admin[4..].to_string(),
        totp_secret.clone(),
        pin.to_string(),
        admin_password.to_string(),
    ]);
    secrets.extend(recovery.iter().cloned());
    // Recovery codes are shown in groups; their characters without separators count too.
    secrets.extend(recovery.iter().map(|c| c.replace('-', "")));
    let pool = sqlx::PgPool::connect(&server.database_url)
        .await
        .expect("pool");
    let dump = crate::helpers::dump_database(&pool).await;
    let mut logs = std::fs::read_to_string(&log).expect("log");
    logs.push_str(&String::from_utf8_lossy(&created.stdout));
    // The places searched hold the journey (what is searched could have been found).
    assert!(logs.contains("mail sent"), "the journey's logs");
    assert!(dump.contains("account.mfa.passed"), "the journey's events");
    for (place, text) in [("database", &dump), ("logs", &logs), ("stream", &stream)] {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{secret:?} found in the {place}"
            );
        }
        // Six-digit codes collide with digits anywhere; a leak would be a JSON string.
        assert!(
            !text.contains(&format!("\"{totp_code}\"")),
            "the TOTP code in the {place}"
        );
    }
    println!(
        "secret scan: {} secrets searched in {} KiB of database dump, {} log lines and {} KiB of stream; none found",
        secrets.len() + 1,
        dump.len() / 1024,
        logs.lines().count(),
        stream.len() / 1024
    );
    server.kill().await;
}

#[tokio::test]
async fn a_policy_committed_before_a_kill_is_swept_after_the_restart() {
    use reqwest::Method;
    let mut server = Server::new(fresh_database().await);
    server.start().await;
    let client = reqwest::Client::new();
    let mut sessions = Vec::new();
    for who in ["holder", "ana", "ben", "cyd"] {
        let email = format!("{who}.sweep@example.com");
        let body = json!({ "email": email, "password": PASSWORD });
        let (status, _) = call(
            &client,
            Method::POST,
            server.url("/v1/accounts"),
            None,
            body,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let body = json!({ "email": email, "password": PASSWORD });
        let (_, login) = call(
            &client,
            Method::POST,
            server.url("/v1/sessions"),
            None,
            body,
        )
        .await;
        sessions.push(login["token"].as_str().expect("a session").to_string());
    }
    let holder = sessions[0].clone();
    let body = json!({ "name": "Strict" });
    let (_, workspace) = call(
        &client,
        Method::POST,
        server.url("/v1/workspaces"),
        Some(&holder),
        body,
    )
    .await;
    let workspace = workspace["id"].as_str().expect("id").to_string();
    for who in ["ana", "ben", "cyd"] {
        let body = json!({ "email": format!("{who}.sweep@example.com"), "role": "agent" });
        let path = server.url(&format!("/v1/workspaces/{workspace}/members"));
        let (status, _) = call(&client, Method::POST, path, Some(&holder), body).await;
        assert_eq!(status, StatusCode::CREATED);
    }

    // The policy commits while nothing can read it, and the server dies before anything did.
    let pool = sqlx::PgPool::connect(&server.database_url)
        .await
        .expect("pool");
    let held = hold_the_horizon(&server.database_url).await;
    let url = server.url(&format!("/v1/workspaces/{workspace}/mfa-policy"));
    let request = client
        .put(url)
        .bearer_auth(&holder)
        .json(&json!({ "required": true }))
        .send();
    let pending = tokio::spawn(request);
    let committed = async {
        loop {
            let policies: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM events WHERE event_type = 'workspace.mfa_policy.changed'",
            )
            .fetch_one(&pool)
            .await
            .expect("count");
            if policies == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), committed)
        .await
        .expect("the policy committed");
    server.kill().await;
    drop(held);
    assert!(
        pending.await.expect("task").is_err(),
        "the request died with the server"
    );
    let swept_before: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE payload -> 'SessionEnded' ->> 'reason' = 'mfa_policy'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(swept_before, 0, "the kill came before the sweep");

    server.start().await;
    let mut refused = vec![false; sessions.len()];
    for _ in 0..300 {
        for (session, refused) in sessions.iter().zip(refused.iter_mut()) {
            let (status, _) = call(
                &client,
                Method::GET,
                server.url("/v1/me"),
                Some(session),
                Value::Null,
            )
            .await;
            *refused = status == StatusCode::UNAUTHORIZED;
        }
        if refused.iter().all(|r| *r) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        refused,
        vec![true; 4],
        "every password-only session of a member is refused"
    );
    // The check refuses them at once; the sweep records their ends as it reaches them (the
    // first waits for the killed process's lease to run out: it cannot confirm a revocation).
    let mut swept: i64 = 0;
    for _ in 0..300 {
        swept = sqlx::query_scalar(
            "SELECT count(*) FROM events
             WHERE payload -> 'SessionEnded' ->> 'reason' = 'mfa_policy'",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        if swept >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let swept_finally: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE payload -> 'SessionEnded' ->> 'reason' = 'mfa_policy'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!((swept, swept_finally), (4, 4), "each ended once");
    println!(
        "policy sweep: killed after the policy committed, 4 of 4 sessions ended after the restart"
    );
    server.kill().await;
}
