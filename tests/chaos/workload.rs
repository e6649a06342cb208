//! The clients: people who register, log in (sometimes with a wrong password), turn on TOTP,
//! sign in with codes (the same code raced on two processes), create and use API tokens, end
//! sessions and change passwords; an attacker guessing passwords; a script hammering one API
//! token; a workspace holder switching "require MFA" on and off; and readers paging the stream.
//! Every request goes to a process picked at random.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret};

use crate::history::{Answer, Fact, History, StartedSession};

pub struct World {
    pub bases: Vec<String>,
    pub history: History,
    stop: AtomicBool,
    /// Accounts a workspace holder may add: (email, account id).
    people: Mutex<Vec<(String, String)>>,
    client: reqwest::Client,
}

impl World {
    pub fn new(bases: Vec<String>) -> Self {
        Self {
            bases,
            history: History::new(),
            stop: AtomicBool::new(false),
            people: Mutex::new(Vec::new()),
            // A connection opened for a request that a pooled one then served waits unused
            // in the pool; the server answers such a connection with a bodiless 408 once
            // its first request is 5 s late (`client_request_timeout`), and a request sent
            // on it as that 408 arrives takes it for its answer. Browsers retry a 408 on a
            // reused connection; this client instead lets idle connections go well before 5 s.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(4)
                .pool_idle_timeout(Duration::from_secs(3))
                .build()
                .expect("client"),
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &self,
        actor: &str,
        process: usize,
        what: &'static str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let url = format!("{}{path}", self.bases[process]);
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.history
            .send(actor, process, what, token, request)
            .await
    }

    /// Presents `token` to every process, right after the call that ended it answered.
    async fn use_everywhere(&self, actor: &str, token: &str) {
        let uses = (0..self.bases.len()).map(|process| {
            self.call(
                actor,
                process,
                "use after revocation",
                Method::GET,
                "/v1/me",
                Some(token),
                None,
            )
        });
        futures_util::future::join_all(uses).await;
    }

    async fn pause(&self, rng: &mut StdRng, up_to_ms: u64) {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(5..=up_to_ms))).await;
    }
}

fn pick(world: &World, rng: &mut StdRng) -> usize {
    rng.gen_range(0..world.bases.len())
}

fn fresh_password(rng: &mut StdRng) -> String {
    format!("chaos {:016x} staple battery horse", rng.gen::<u64>())
}

fn totp_code(secret: &str, at: u64) -> Option<(String, u64)> {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().ok()?;
    let code = warden::adapters::totp::code_at(Algorithm::SHA1, 6, 30, &bytes, at)?;
    Some((code, at / 30))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Clone)]
struct Session {
    token: String,
    id: String,
}

/// One person's account and what they hold.
struct Person {
    actor: String,
    rng: StdRng,
    email: String,
    password: String,
    /// A password change that got no answer may have been kept.
    maybe_password: Option<String>,
    account: Option<String>,
    sessions: Vec<Session>,
    tokens: Vec<(String, String)>,
    totp: Option<String>,
    /// An enrolment whose confirmation got no answer.
    pending_totp: Option<(String, Vec<String>)>,
    recovery_codes: Vec<String>,
}

impl Person {
    fn new(index: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let password = fresh_password(&mut rng);
        Self {
            actor: format!("person-{index}"),
            email: format!("person{index}.{:08x}@example.com", rng.gen::<u32>()),
            rng,
            password,
            maybe_password: None,
            account: None,
            sessions: Vec::new(),
            tokens: Vec::new(),
            totp: None,
            pending_totp: None,
            recovery_codes: Vec::new(),
        }
    }

    /// `world.call` as this person, to a process picked at random.
    async fn call(
        &mut self,
        world: &World,
        what: &'static str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let process = pick(world, &mut self.rng);
        world
            .call(&self.actor, process, what, method, path, token, body)
            .await
    }

    /// Notes that `session` ended with a call answered now, and presents it everywhere.
    async fn ended(&mut self, world: &World, what: &'static str, session: &Session) {
        let at = world.history.now();
        world.history.note(Fact::Revoked {
            what,
            tokens: vec![session.token.clone()],
            at,
        });
        world.history.note(Fact::SessionEnded {
            session: session.id.clone(),
        });
        self.sessions.retain(|s| s.id != session.id);
        world.use_everywhere(&self.actor, &session.token).await;
    }

    async fn live(mut self, world: &World) {
        while !world.stopping() {
            if self.account.is_none() {
                self.register(world).await;
            } else if self.sessions.is_empty()
                || (self.sessions.len() < 3 && self.rng.gen_bool(0.1))
            {
                self.log_in(world).await;
            } else {
                self.act(world).await;
            }
            world.pause(&mut self.rng, 60).await;
        }
    }

    async fn register(&mut self, world: &World) {
        let body = json!({ "email": self.email, "password": self.password });
        let answer = self
            .call(
                world,
                "register",
                Method::POST,
                "/v1/accounts",
                None,
                Some(body),
            )
            .await;
        if answer.is(201) {
            let id = answer.text("id").unwrap_or_default();
            world.history.note(Fact::Registered {
                account: id.clone(),
            });
            world
                .people
                .lock()
                .expect("people")
                .push((self.email.clone(), id.clone()));
            self.account = Some(id);
        } else if answer.text("code").as_deref() == Some("email_taken") {
            // An earlier attempt was kept though its answer was lost: the id comes with a login.
            self.account = Some(String::new());
        }
    }

    async fn log_in(&mut self, world: &World) {
        let process = pick(world, &mut self.rng);
        if self.rng.gen_bool(0.1) {
            let wrong = json!({ "email": self.email, "password": "not the password at all" });
            world
                .call(
                    &self.actor,
                    process,
                    "wrong password",
                    Method::POST,
                    "/v1/sessions",
                    None,
                    Some(wrong),
                )
                .await;
        }
        let body = json!({ "email": self.email, "password": self.password });
        let answer = world
            .call(
                &self.actor,
                process,
                "log in",
                Method::POST,
                "/v1/sessions",
                None,
                Some(body),
            )
            .await;
        match (answer.status, answer.text("status").as_deref()) {
            (Some(201), _) => self.started(world, &answer.body, "password", false).await,
            (Some(200), Some("mfa_enrollment_required")) => {
                self.started(world, &answer.body, "password", true).await;
                if let Some(token) = answer.text("token") {
                    self.enroll_totp_with(world, &token).await;
                }
            }
            (Some(200), Some("mfa_required")) => {
                if self.totp.is_none() {
                    if let Some((secret, codes)) = self.pending_totp.take() {
                        self.totp = Some(secret);
                        self.recovery_codes = codes;
                    }
                }
                let challenge = answer.text("challenge").unwrap_or_default();
                self.second_step(world, &[challenge]).await;
            }
            (Some(401), _) => {
                // A password change whose answer was lost may or may not have been kept: the
                // two candidates are tried in turn.
                if let Some(other) = self.maybe_password.as_mut() {
                    std::mem::swap(&mut self.password, other);
                }
            }
            (Some(423), _) => tokio::time::sleep(Duration::from_secs(2)).await,
            _ => {}
        }
    }

    /// Answers `challenges` (one per process it went to) with one code, all at once: a TOTP
    /// step or a recovery code opens at most one of them.
    async fn second_step(&mut self, world: &World, challenges: &[String]) {
        let Some(secret) = self.totp.clone() else {
            return;
        };
        let recovery = !self.recovery_codes.is_empty() && self.rng.gen_bool(0.3);
        let (method, code, step) = if recovery {
            let index = self.rng.gen_range(0..self.recovery_codes.len());
            ("recovery_code", self.recovery_codes.remove(index), None)
        } else {
            match totp_code(&secret, unix_now()) {
                Some((code, step)) => ("totp", code, Some(step)),
                None => return,
            }
        };
        let attempts = challenges.iter().map(|challenge| {
            let process = pick(world, &mut self.rng);
            let body = json!({ "challenge": challenge, "method": method, "code": code });
            world.call(
                &self.actor,
                process,
                "second step",
                Method::POST,
                "/v1/sessions/mfa",
                None,
                Some(body),
            )
        });
        let answers = futures_util::future::join_all(attempts.collect::<Vec<_>>()).await;
        for answer in answers.iter().filter(|a| a.is(201)) {
            let account = self.account.clone().unwrap_or_default();
            match step {
                Some(step) => world.history.note(Fact::TotpStepAccepted { account, step }),
                None => world.history.note(Fact::RecoveryCodeAccepted {
                    account,
                    code: code.clone(),
                }),
            }
            self.started(world, &answer.body, method, false).await;
        }
    }

    async fn started(
        &mut self,
        world: &World,
        body: &Value,
        method: &'static str,
        enrollment_only: bool,
    ) {
        let token = body["token"].as_str().unwrap_or_default().to_owned();
        let id = body["session"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if self.account.as_deref().is_none_or(str::is_empty) {
            let me = self
                .call(world, "me", Method::GET, "/v1/me", Some(&token), None)
                .await;
            self.account = me.text("id").or(self.account.take());
        }
        world.history.note(Fact::SessionStarted(StartedSession {
            account: self.account.clone().unwrap_or_default(),
            session: id.clone(),
            token: token.clone(),
            method,
            enrollment_only,
            at: world.history.now(),
        }));
        if !enrollment_only {
            self.sessions.push(Session { token, id });
        }
    }

    async fn act(&mut self, world: &World) {
        let roll = self.rng.gen_range(0..100);
        let current = self.sessions[self.rng.gen_range(0..self.sessions.len())].clone();
        match roll {
            0..=34 => {
                self.call(
                    world,
                    "me",
                    Method::GET,
                    "/v1/me",
                    Some(&current.token),
                    None,
                )
                .await;
            }
            35..=46 => self.create_token(world, &current).await,
            47..=54 => self.revoke_token(world, &current).await,
            55..=64 => self.log_out(world, &current).await,
            65..=70 => self.end_other_session(world, &current).await,
            71..=75 => self.log_out_everywhere(world, &current).await,
            76..=81 => self.change_password(world, &current).await,
            82..=89 if self.totp.is_none() => self.enroll_totp_with(world, &current.token).await,
            82..=89 => self.race_second_steps(world).await,
            _ => {
                if let Some((_, token)) = self.tokens.first().cloned() {
                    self.call(
                        world,
                        "use token",
                        Method::GET,
                        "/v1/me",
                        Some(&token),
                        None,
                    )
                    .await;
                }
            }
        }
    }

    async fn create_token(&mut self, world: &World, current: &Session) {
        let name = format!("chaos {:08x}", self.rng.gen::<u32>());
        let body = json!({ "name": name, "password": self.password });
        let answer = self
            .call(
                world,
                "create token",
                Method::POST,
                "/v1/me/tokens",
                Some(&current.token),
                Some(body),
            )
            .await;
        if answer.is(201) {
            let (Some(id), Some(token)) = (answer.text("id"), answer.text("token")) else {
                return;
            };
            world.history.note(Fact::TokenCreated {
                token_id: id.clone(),
            });
            self.call(
                world,
                "use token",
                Method::GET,
                "/v1/me",
                Some(&token),
                None,
            )
            .await;
            self.tokens.push((id, token));
        }
    }

    async fn revoke_token(&mut self, world: &World, current: &Session) {
        if self.tokens.is_empty() {
            return;
        }
        let (id, token) = self.tokens.remove(0);
        let answer = self
            .call(
                world,
                "revoke token",
                Method::DELETE,
                &format!("/v1/me/tokens/{id}"),
                Some(&current.token),
                None,
            )
            .await;
        if answer.status.is_some_and(|s| (200..300).contains(&s)) {
            let at = world.history.now();
            world.history.note(Fact::Revoked {
                what: "revoke token",
                tokens: vec![token.clone()],
                at,
            });
            world.use_everywhere(&self.actor, &token).await;
        } else if answer.status.is_none() || answer.is(503) {
            self.tokens.push((id, token));
        }
    }

    async fn log_out(&mut self, world: &World, current: &Session) {
        let answer = self
            .call(
                world,
                "log out",
                Method::DELETE,
                "/v1/sessions/current",
                Some(&current.token),
                None,
            )
            .await;
        if answer.is(204) {
            self.ended(world, "log out", current).await;
        } else if answer.is(401) {
            self.sessions.retain(|s| s.id != current.id);
        }
    }

    async fn end_other_session(&mut self, world: &World, current: &Session) {
        let Some(other) = self.sessions.iter().find(|s| s.id != current.id).cloned() else {
            return;
        };
        let path = format!("/v1/me/sessions/{}", other.id);
        let answer = self
            .call(
                world,
                "end session",
                Method::DELETE,
                &path,
                Some(&current.token),
                None,
            )
            .await;
        if answer.status.is_some_and(|s| (200..300).contains(&s)) {
            self.ended(world, "end session", &other).await;
        } else if answer.is(401) {
            self.sessions.retain(|s| s.id != current.id);
        }
    }

    async fn log_out_everywhere(&mut self, world: &World, current: &Session) {
        let answer = self
            .call(
                world,
                "log out everywhere",
                Method::POST,
                "/v1/me/sessions/revoke-all",
                Some(&current.token),
                None,
            )
            .await;
        if answer.is(200) {
            let at = world.history.now();
            let tokens: Vec<String> = self.sessions.iter().map(|s| s.token.clone()).collect();
            world.history.note(Fact::Revoked {
                what: "log out everywhere",
                tokens: tokens.clone(),
                at,
            });
            for session in self.sessions.drain(..) {
                world.history.note(Fact::SessionEnded {
                    session: session.id,
                });
            }
            for token in tokens {
                world.use_everywhere(&self.actor, &token).await;
            }
        } else if answer.is(401) {
            self.sessions.retain(|s| s.id != current.id);
        }
    }

    async fn change_password(&mut self, world: &World, current: &Session) {
        let new_password = fresh_password(&mut self.rng);
        let body = json!({ "current_password": self.password, "new_password": new_password });
        let answer = self
            .call(
                world,
                "change password",
                Method::PUT,
                "/v1/me/password",
                Some(&current.token),
                Some(body),
            )
            .await;
        match answer.status {
            Some(204) | Some(200) => {
                let at = world.history.now();
                let others: Vec<String> = self
                    .sessions
                    .iter()
                    .filter(|s| s.id != current.id)
                    .map(|s| s.token.clone())
                    .collect();
                world.history.note(Fact::Revoked {
                    what: "change password",
                    tokens: others.clone(),
                    at,
                });
                for session in self.sessions.iter().filter(|s| s.id != current.id) {
                    world.history.note(Fact::SessionEnded {
                        session: session.id.clone(),
                    });
                }
                self.password = new_password;
                self.maybe_password = None;
                self.sessions.retain(|s| s.id == current.id);
                for token in others {
                    world.use_everywhere(&self.actor, &token).await;
                }
            }
            None | Some(503) => self.maybe_password = Some(new_password),
            Some(401) => self.sessions.retain(|s| s.id != current.id),
            _ => {}
        }
    }

    async fn enroll_totp_with(&mut self, world: &World, token: &str) {
        let answer = self
            .call(
                world,
                "enrol totp",
                Method::POST,
                "/v1/me/mfa/totp",
                Some(token),
                Some(json!({})),
            )
            .await;
        let Some(secret) = answer.text("secret") else {
            return;
        };
        let codes: Vec<String> = answer.body["recovery_codes"]
            .as_array()
            .map(|codes| {
                codes
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let Some((code, step)) = totp_code(&secret, unix_now()) else {
            return;
        };
        let answer = self
            .call(
                world,
                "confirm totp",
                Method::POST,
                "/v1/me/mfa/totp/confirm",
                Some(token),
                Some(json!({ "code": code })),
            )
            .await;
        if answer.status.is_some_and(|s| (200..300).contains(&s)) {
            let account = self.account.clone().unwrap_or_default();
            world.history.note(Fact::TotpStepAccepted { account, step });
            self.totp = Some(secret);
            self.recovery_codes = codes;
        } else if answer.status.is_none() {
            self.pending_totp = Some((secret, codes));
        }
    }

    /// Two logins on two processes, then one code for both challenges at once.
    async fn race_second_steps(&mut self, world: &World) {
        let mut challenges = Vec::new();
        for _ in 0..2 {
            let body = json!({ "email": self.email, "password": self.password });
            let answer = self
                .call(
                    world,
                    "log in",
                    Method::POST,
                    "/v1/sessions",
                    None,
                    Some(body),
                )
                .await;
            if answer.text("status").as_deref() == Some("mfa_required") {
                challenges.extend(answer.text("challenge"));
            }
        }
        if !challenges.is_empty() {
            self.second_step(world, &challenges).await;
        }
    }
}

/// Sends only wrong passwords, two at a time, to an account of its own.
async fn attacker(world: &World, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let actor = "attacker";
    let email = format!("target.{:08x}@example.com", rng.gen::<u32>());
    let body = json!({ "email": email, "password": fresh_password(&mut rng) });
    let mut account = None;
    while account.is_none() && !world.stopping() {
        let process = pick(world, &mut rng);
        let answer = world
            .call(
                actor,
                process,
                "register",
                Method::POST,
                "/v1/accounts",
                None,
                Some(body.clone()),
            )
            .await;
        if answer.is(201) {
            account = answer.text("id");
        }
        world.pause(&mut rng, 200).await;
    }
    let Some(account) = account else {
        return;
    };
    world.history.note(Fact::Registered {
        account: account.clone(),
    });
    world.history.note(Fact::Attacked { account });
    while !world.stopping() {
        let guesses = (0..2).map(|_| {
            let process = pick(world, &mut rng);
            let body = json!({ "email": email, "password": fresh_password(&mut rng) });
            world.call(
                actor,
                process,
                "wrong password",
                Method::POST,
                "/v1/sessions",
                None,
                Some(body),
            )
        });
        futures_util::future::join_all(guesses.collect::<Vec<_>>()).await;
        world.pause(&mut rng, 400).await;
    }
}

/// One API token used about 20 times a second from three loops, against its 60 a minute.
async fn hammer(world: &World, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let actor = "hammer";
    let mut person = Person::new(900, seed);
    person.actor = actor.to_owned();
    while person.sessions.is_empty() && !world.stopping() {
        if person.account.is_none() {
            person.register(world).await;
        } else {
            person.log_in(world).await;
        }
        world.pause(&mut rng, 200).await;
    }
    while person.tokens.is_empty() && !world.stopping() {
        let current = person.sessions[0].clone();
        person.create_token(world, &current).await;
        world.pause(&mut rng, 200).await;
    }
    let Some((_, token)) = person.tokens.first().cloned() else {
        return;
    };
    world.history.note(Fact::Hammered {
        token: token.clone(),
    });
    let loops = (0..3u64).map(|n| {
        let token = token.clone();
        async move {
            let mut rng = StdRng::seed_from_u64(seed ^ (n + 1));
            while !world.stopping() {
                let process = pick(world, &mut rng);
                world
                    .call(
                        actor,
                        process,
                        "hammer token",
                        Method::GET,
                        "/v1/me",
                        Some(&token),
                        None,
                    )
                    .await;
                world.pause(&mut rng, 300).await;
            }
        }
    });
    futures_util::future::join_all(loops).await;
}

/// A workspace holder who adds the people as agents and switches "require MFA" on and off.
async fn holder(world: &World, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut person = Person::new(901, seed);
    person.actor = "holder".to_owned();
    let mut workspace = None;
    let mut members: Vec<String> = Vec::new();
    let mut required = false;
    while !world.stopping() {
        if person.sessions.is_empty() {
            if person.account.is_none() {
                person.register(world).await;
            } else {
                person.log_in(world).await;
            }
        } else if workspace.is_none() {
            let process = pick(world, &mut rng);
            let answer = world
                .call(
                    "holder",
                    process,
                    "create workspace",
                    Method::POST,
                    "/v1/workspaces",
                    Some(&person.sessions[0].token),
                    Some(json!({ "name": "chaos" })),
                )
                .await;
            workspace = answer.text("id");
            members.extend(person.account.clone());
        } else if let Some(id) = workspace.clone() {
            let token = person.sessions[0].token.clone();
            let candidate = {
                let people = world.people.lock().expect("people");
                people.iter().find(|(_, a)| !members.contains(a)).cloned()
            };
            if let Some((email, account)) = candidate.filter(|_| rng.gen_bool(0.5)) {
                let process = pick(world, &mut rng);
                let body = json!({ "email": email, "role": "agent" });
                let answer = world
                    .call(
                        "holder",
                        process,
                        "add member",
                        Method::POST,
                        &format!("/v1/workspaces/{id}/members"),
                        Some(&token),
                        Some(body),
                    )
                    .await;
                if answer.status.is_some_and(|s| (200..300).contains(&s)) {
                    members.push(account);
                }
            } else {
                required = !required;
                let process = pick(world, &mut rng);
                let invoked = world.history.now();
                let answer = world
                    .call(
                        "holder",
                        process,
                        "mfa policy",
                        Method::PUT,
                        &format!("/v1/workspaces/{id}/mfa-policy"),
                        Some(&token),
                        Some(json!({ "required": required })),
                    )
                    .await;
                let kept = answer.status.is_some_and(|s| (200..300).contains(&s));
                if kept && required {
                    let at = world.history.now();
                    world.history.note(Fact::MfaRequired {
                        members: members.clone(),
                        invoked,
                        at,
                    });
                    // The holder's own password-only session ended with it.
                    person.sessions.clear();
                } else if !kept {
                    required = !required;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(500..3000))).await;
    }
}

/// Pages through the stream from the start, each page from a process picked at random; answers
/// every event id it read, in order.
pub async fn read_stream(
    world: &World,
    actor: &str,
    token: &str,
    seed: u64,
    until_stopped: bool,
) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut after = String::new();
    let mut ids = Vec::new();
    loop {
        let process = pick(world, &mut rng);
        let limit = rng.gen_range(1..=500);
        let path = if after.is_empty() {
            format!("/v1/events?limit={limit}")
        } else {
            format!("/v1/events?limit={limit}&after={after}")
        };
        let answer = world
            .call(
                actor,
                process,
                "read stream",
                Method::GET,
                &path,
                Some(token),
                None,
            )
            .await;
        let events = answer.body["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if answer.is(200) {
            ids.extend(
                events
                    .iter()
                    .filter_map(|e| e["id"].as_str().map(str::to_owned)),
            );
            if let Some(next) = answer.text("next") {
                after = next;
            }
        }
        if events.is_empty() {
            if (!until_stopped || world.stopping()) && answer.is(200) {
                return ids;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Runs every client until the world stops; answers what the concurrent stream reader read.
pub async fn run(world: &World, seed: u64, people: usize, admin_token: &str) -> Vec<String> {
    let persons = (0..people)
        .map(|i| Person::new(i, seed.wrapping_mul(31).wrapping_add(i as u64)).live(world));
    let others = async {
        tokio::join!(
            attacker(world, seed ^ 0xa77a),
            hammer(world, seed ^ 0x4a33),
            holder(world, seed ^ 0x401d),
        )
    };
    let reader = read_stream(world, "reader", admin_token, seed ^ 0x5eed, true);
    let (_, _, read) = tokio::join!(futures_util::future::join_all(persons), others, reader);
    read
}
