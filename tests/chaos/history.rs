//! What the run saw: every request with its invocation and its answer (or none), and the facts
//! the clients learned from the answers, which the checks read afterwards.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One HTTP request as a client made it.
#[derive(Debug, Clone)]
pub struct Call {
    pub actor: String,
    /// The Warden process it went to.
    pub process: usize,
    pub what: &'static str,
    /// The bearer token it presented, if any.
    pub credential: Option<String>,
    /// Seconds since the run began.
    pub invoked: f64,
    pub answered: Option<f64>,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub problem_json: bool,
    pub retry_after: bool,
}

/// A session as its login's answer described it.
#[derive(Debug, Clone)]
pub struct StartedSession {
    pub account: String,
    pub session: String,
    pub token: String,
    /// `password`, `totp`, `recovery_code`.
    pub method: &'static str,
    pub enrollment_only: bool,
    /// When the login answered.
    pub at: f64,
}

#[derive(Debug, Clone)]
pub enum Fact {
    Registered {
        account: String,
    },
    SessionStarted(StartedSession),
    TokenCreated {
        token_id: String,
    },
    /// A call that ends `tokens` answered success at `at`.
    Revoked {
        what: &'static str,
        tokens: Vec<String>,
        at: f64,
    },
    /// The end of this session was acknowledged.
    SessionEnded {
        session: String,
    },
    /// A workspace began to require MFA: the password-only sessions that `members` started before
    /// `invoked` end with the answer at `at`.
    MfaRequired {
        members: Vec<String>,
        invoked: f64,
        at: f64,
    },
    RecoveryCodeAccepted {
        account: String,
        code: String,
    },
    TotpStepAccepted {
        account: String,
        step: u64,
    },
    /// Only wrong passwords are sent to this account.
    Attacked {
        account: String,
    },
    /// This API token is used far past its limit.
    Hammered {
        token: String,
    },
    Fault {
        kind: &'static str,
        /// The process it struck; `None` for all of them.
        process: Option<usize>,
        at: f64,
        until: f64,
        detail: String,
    },
}

/// The answer a client acts on.
#[derive(Debug)]
pub struct Answer {
    pub status: Option<u16>,
    pub body: Value,
}

impl Answer {
    pub fn is(&self, status: u16) -> bool {
        self.status == Some(status)
    }

    pub fn text(&self, key: &str) -> Option<String> {
        self.body
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

pub struct History {
    started: Instant,
    calls: Mutex<Vec<Call>>,
    facts: Mutex<Vec<Fact>>,
}

impl History {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            calls: Mutex::new(Vec::new()),
            facts: Mutex::new(Vec::new()),
        }
    }

    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn note(&self, fact: Fact) {
        self.facts.lock().expect("facts").push(fact);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    pub fn facts(&self) -> Vec<Fact> {
        self.facts.lock().expect("facts").clone()
    }

    /// Sends `request` and records it with its answer.
    pub async fn send(
        &self,
        actor: &str,
        process: usize,
        what: &'static str,
        credential: Option<&str>,
        request: reqwest::RequestBuilder,
    ) -> Answer {
        let request = match credential {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let invoked = self.now();
        let mut call = Call {
            actor: actor.to_owned(),
            process,
            what,
            credential: credential.map(str::to_owned),
            invoked,
            answered: None,
            status: None,
            code: None,
            problem_json: false,
            retry_after: false,
        };
        let mut body = Value::Null;
        if let Ok(response) = request.timeout(Duration::from_secs(40)).send().await {
            let status = response.status().as_u16();
            let headers = response.headers();
            call.problem_json = headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/problem+json"));
            call.retry_after = headers.contains_key(reqwest::header::RETRY_AFTER);
            // An answer whose body was cut off is no answer: the client cannot act on it.
            if let Ok(bytes) = response.bytes().await {
                body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                call.status = Some(status);
                call.answered = Some(self.now());
                call.code = body.get("code").and_then(Value::as_str).map(str::to_owned);
            }
        }
        let status = call.status;
        self.calls.lock().expect("calls").push(call);
        Answer { status, body }
    }
}
