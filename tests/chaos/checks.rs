//! The promises the recorded history must keep, each checked on its own; a check names the
//! operations that broke it.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use sqlx::PgPool;

use crate::history::{Call, Fact};

pub struct Check {
    pub name: &'static str,
    /// What it looked at, for the summary.
    pub checked: String,
    pub violations: Vec<String>,
}

impl Check {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            checked: String::new(),
            violations: Vec::new(),
        }
    }
}

fn accepted(call: &Call) -> bool {
    call.status.is_some_and(|s| (200..300).contains(&s))
}

fn describe(call: &Call) -> String {
    format!(
        "{} {} on process {} invoked at {:.3} s answered {:?} at {:?}",
        call.actor, call.what, call.process, call.invoked, call.status, call.answered
    )
}

/// Whether `call` was in flight at its process while that process was frozen.
fn frozen_during(call: &Call, facts: &[Fact]) -> bool {
    let answered = call.answered.unwrap_or(f64::MAX);
    facts.iter().any(|fact| {
        matches!(fact, Fact::Fault { kind: "SIGSTOP then SIGCONT", process: Some(p), at, until, .. }
            if *p == call.process && *at < answered && call.invoked < *until)
    })
}

/// The last fault at `call`'s process or at every process that began before it, to read a
/// violation against.
fn last_fault(call: &Call, facts: &[Fact]) -> String {
    let last = facts
        .iter()
        .filter_map(|fact| match fact {
            Fact::Fault {
                kind,
                process,
                at,
                until,
                ..
            } if process.is_none_or(|p| p == call.process) && *at < call.invoked => {
                Some((*at, *until, *kind))
            }
            _ => None,
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    last.map_or_else(String::new, |(at, until, kind)| {
        format!(" (after {kind} from {at:.3} s to {until:.3} s)")
    })
}

/// No 500; a 503 says when to come back; every refusal is a problem document with a code the
/// server documents. The one exception is the HTTP layer's own bodiless 408, and only for a
/// request whose process was frozen while it was in flight: its read deadline passed while
/// the process could not read.
pub fn answers(calls: &[Call], facts: &[Fact], documented: &HashSet<String>) -> Check {
    let mut check = Check::new("every answer is a success or a documented problem");
    let (mut refused, mut timed_out) = (0, 0);
    for call in calls.iter().filter(|c| c.status.is_some_and(|s| s >= 400)) {
        refused += 1;
        let status = call.status.unwrap_or_default();
        if status == 408 && frozen_during(call, facts) {
            timed_out += 1;
            continue;
        }
        let fault = if status >= 500 && status != 503 {
            Some("a server error")
        } else if status == 503 && !call.retry_after {
            Some("a 503 without Retry-After")
        } else if !call.problem_json {
            Some("not application/problem+json")
        } else if !call.code.as_ref().is_some_and(|c| documented.contains(c)) {
            Some("an undocumented code")
        } else {
            None
        };
        if let Some(fault) = fault {
            check.violations.push(format!(
                "{fault} ({:?}): {}{}",
                call.code,
                describe(call),
                last_fault(call, facts)
            ));
        }
    }
    let unanswered = calls.iter().filter(|c| c.status.is_none()).count();
    check.checked = format!(
        "{} calls, {refused} refused ({timed_out} bodiless 408 from a frozen process), \
         {unanswered} without an answer",
        calls.len()
    );
    check
}

/// When each credential was ended by a call that answered success.
fn revocations(facts: &[Fact]) -> HashMap<String, (f64, &'static str)> {
    let mut ended: HashMap<String, (f64, &'static str)> = HashMap::new();
    let mut end = |token: &str, at: f64, what: &'static str| {
        let entry = ended.entry(token.to_owned()).or_insert((at, what));
        if at < entry.0 {
            *entry = (at, what);
        }
    };
    for fact in facts {
        match fact {
            Fact::Revoked { what, tokens, at } => {
                for token in tokens {
                    end(token, *at, what);
                }
            }
            Fact::MfaRequired {
                members,
                invoked,
                at,
            } => {
                for fact in facts {
                    let Fact::SessionStarted(session) = fact else {
                        continue;
                    };
                    if members.contains(&session.account)
                        && session.method == "password"
                        && !session.enrollment_only
                        && session.at < *invoked
                    {
                        end(&session.token, *at, "require MFA");
                    }
                }
            }
            _ => {}
        }
    }
    ended
}

/// No process accepts a credential in a request sent after a revocation covering it answered.
pub fn revocation(calls: &[Call], facts: &[Fact]) -> Check {
    let mut check = Check::new("no credential accepted after its revocation answered");
    let ended = revocations(facts);
    let mut presented = 0;
    for call in calls {
        let Some((at, what)) = call.credential.as_ref().and_then(|t| ended.get(t)) else {
            continue;
        };
        if call.invoked <= *at {
            continue;
        }
        presented += 1;
        if accepted(call) {
            check.violations.push(format!(
                "ended by \"{what}\" answered at {at:.3} s, then accepted: {}",
                describe(call)
            ));
        }
    }
    check.checked = format!(
        "{} credentials ended, presented {presented} times afterwards",
        ended.len()
    );
    check
}

/// How many events of `event_type` each value of `key` (an SQL expression on `events`) has.
async fn counts(pool: &PgPool, event_type: &str, key: &str) -> sqlx::Result<HashMap<String, i64>> {
    let sql = format!("SELECT {key}, count(*) FROM events WHERE event_type = $1 GROUP BY 1");
    let rows: Vec<(Option<String>, i64)> = sqlx::query_as(&sql)
        .bind(event_type)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, n)| Some((k?, n)))
        .collect())
}

/// Every acknowledged registration, login, token and session end is in the log exactly once.
pub async fn acknowledged(pool: &PgPool, facts: &[Fact]) -> sqlx::Result<Check> {
    let mut check = Check::new("every acknowledged command's events are in the log once");
    let registered = counts(pool, "account.registered", "aggregate_id").await?;
    let started = counts(
        pool,
        "account.session.started",
        "payload -> 'SessionStarted' ->> 'session_id'",
    )
    .await?;
    let ended = counts(
        pool,
        "account.session.ended",
        "payload -> 'SessionEnded' ->> 'session_id'",
    )
    .await?;
    let tokens = counts(
        pool,
        "account.api_token.created",
        "payload -> 'ApiTokenCreated' ->> 'token_id'",
    )
    .await?;
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for fact in facts {
        let (kind, id, table) = match fact {
            Fact::Registered { account } => ("registrations", account, &registered),
            Fact::SessionStarted(session) => ("sessions", &session.session, &started),
            Fact::SessionEnded { session } => ("session ends", session, &ended),
            Fact::TokenCreated { token_id } => ("tokens", token_id, &tokens),
            _ => continue,
        };
        *seen.entry(kind).or_default() += 1;
        let found = table.get(id).copied().unwrap_or(0);
        if found != 1 {
            check.violations.push(format!(
                "acknowledged {kind} {id} is in the log {found} times"
            ));
        }
    }
    check.checked = format!("{seen:?} acknowledged");
    Ok(check)
}

/// A recovery code and a TOTP step open at most one session, by the clients' answers and by
/// the log.
pub async fn single_use(pool: &PgPool, facts: &[Fact]) -> sqlx::Result<Check> {
    let mut check = Check::new("a recovery code or a TOTP step is accepted at most once");
    let mut codes = HashSet::new();
    let mut steps = HashSet::new();
    for fact in facts {
        match fact {
            Fact::RecoveryCodeAccepted { account, code } if !codes.insert((account, code)) => {
                check
                    .violations
                    .push(format!("recovery code accepted twice for {account}"));
            }
            Fact::TotpStepAccepted { account, step } if !steps.insert((account, step)) => {
                check
                    .violations
                    .push(format!("TOTP step {step} accepted twice for {account}"));
            }
            _ => {}
        }
    }
    let rows: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT aggregate_id, event_type, payload FROM events
         WHERE event_type IN ('account.totp.confirmed', 'account.totp.step_accepted',
                              'account.recovery_code.used')
         ORDER BY aggregate_id, sequence",
    )
    .fetch_all(pool)
    .await?;
    let mut last_step: HashMap<&str, u64> = HashMap::new();
    let mut used: HashSet<(&str, &str)> = HashSet::new();
    for (account, event_type, payload) in &rows {
        let body = payload.as_object().and_then(|o| o.values().next());
        if event_type == "account.recovery_code.used" {
            let hash = body
                .and_then(|b| b["code_hash"].as_str())
                .unwrap_or_default();
            if !used.insert((account, hash)) {
                check.violations.push(format!(
                    "the log uses one recovery code twice for {account}"
                ));
            }
            continue;
        }
        let step = body.and_then(|b| b["step"].as_u64()).unwrap_or_default();
        if let Some(last) = last_step.insert(account, step) {
            if step <= last {
                check.violations.push(format!(
                    "the log accepts step {step} after step {last} for {account}"
                ));
            }
        }
    }
    check.checked = format!(
        "{} codes and {} steps accepted by clients; {} in the log",
        codes.len(),
        steps.len(),
        rows.len()
    );
    Ok(check)
}

/// The attacked accounts: no wrong password is checked while a lock is in force, the count of
/// consecutive failures loses none, and the 10th locks.
pub async fn lockout(pool: &PgPool, facts: &[Fact]) -> sqlx::Result<Check> {
    let mut check = Check::new("a lock-out lets no more wrong passwords through than its budget");
    let mut summary = Vec::new();
    for fact in facts {
        let Fact::Attacked { account } = fact else {
            continue;
        };
        let rows: Vec<(String, Value)> = sqlx::query_as(
            "SELECT event_type, payload FROM events
             WHERE aggregate_type = 'account' AND aggregate_id = $1 ORDER BY sequence",
        )
        .bind(account)
        .fetch_all(pool)
        .await?;
        let (mut failures, mut locks, mut count) = (0, 0, 0u64);
        let mut locked_until: Option<Option<String>> = None;
        let mut lock_due = false;
        for (event_type, payload) in &rows {
            let body = payload.as_object().and_then(|o| o.values().next());
            let at = body.and_then(|b| b["at"].as_str()).unwrap_or_default();
            let timestamp = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
            if lock_due && event_type != "account.locked_out" {
                check.violations.push(format!(
                    "{account}: failure {count} was not followed by a lock"
                ));
            }
            lock_due = false;
            match event_type.as_str() {
                "account.password.check_failed" => {
                    failures += 1;
                    let reported = body
                        .and_then(|b| b["consecutive_failures"].as_u64())
                        .unwrap_or_default();
                    if reported != count + 1 {
                        check.violations.push(format!(
                            "{account}: failure recorded as number {reported} after {count}"
                        ));
                    }
                    count = reported;
                    let in_force = match &locked_until {
                        Some(None) => true,
                        Some(Some(until)) => timestamp(at) < timestamp(until),
                        None => false,
                    };
                    if in_force {
                        check.violations.push(format!(
                            "{account}: a wrong password checked at {at} while locked until {locked_until:?}"
                        ));
                    }
                    lock_due = count >= 10;
                }
                "account.locked_out" => {
                    locks += 1;
                    let until = body.and_then(|b| b["until"].as_str()).map(str::to_owned);
                    locked_until = Some(until);
                }
                _ => {}
            }
        }
        if lock_due {
            check.violations.push(format!(
                "{account}: the last failure {count} was not followed by a lock"
            ));
        }
        summary.push(format!("{failures} wrong passwords checked, {locks} locks"));
    }
    check.checked = summary.join("; ");
    Ok(check)
}

/// The hammered token: never more than 60 requests accepted in any minute. A violation is
/// certain when 61 accepted requests were all sent and answered within less than 60 s.
pub fn rate_limit(calls: &[Call], facts: &[Fact]) -> Check {
    let mut check = Check::new("an API token gets at most 60 requests in any minute");
    let hammered: HashSet<&String> = facts
        .iter()
        .filter_map(|f| match f {
            Fact::Hammered { token } => Some(token),
            _ => None,
        })
        .collect();
    let mine = |c: &&Call| c.credential.as_ref().is_some_and(|t| hammered.contains(t));
    let mut admitted: Vec<&Call> = calls.iter().filter(mine).filter(|c| accepted(c)).collect();
    let limited = calls
        .iter()
        .filter(mine)
        .filter(|c| c.status == Some(429))
        .count();
    admitted.sort_by(|a, b| a.invoked.total_cmp(&b.invoked));
    for (i, window) in admitted.windows(61).enumerate() {
        let last_answer = window
            .iter()
            .filter_map(|c| c.answered)
            .fold(f64::MIN, f64::max);
        if last_answer - window[0].invoked < 60.0 {
            check.violations.push(format!(
                "61 requests admitted from {:.3} s to {last_answer:.3} s (from request {i})",
                window[0].invoked
            ));
            break;
        }
    }
    check.checked = format!("{} admitted, {limited} refused with 429", admitted.len());
    check
}

/// The stream read from the start equals the log in commit order, the reader that read through
/// the faults saw a prefix of it; neither has a gap or a duplicate.
pub async fn stream(pool: &PgPool, live: &[String], fresh: &[String]) -> sqlx::Result<Check> {
    let mut check = Check::new("the stream is the log in commit order, without gap or duplicate");
    let log: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_type || ':' || aggregate_id || ':' || sequence FROM events
         ORDER BY transaction_id, global_position",
    )
    .fetch_all(pool)
    .await?;
    for (name, read, whole) in [
        ("live reader", live, false),
        ("reader from the start", fresh, true),
    ] {
        let first_difference = read.iter().zip(&log).position(|(a, b)| a != b);
        if let Some(i) = first_difference {
            check.violations.push(format!(
                "{name}: event {i} is {} where the log has {}",
                read[i], log[i]
            ));
        } else if read.len() > log.len() {
            check.violations.push(format!(
                "{name}: {} events more than the log",
                read.len() - log.len()
            ));
        } else if whole && read.len() < log.len() {
            check.violations.push(format!(
                "{name}: {} events of the log missing",
                log.len() - read.len()
            ));
        }
    }
    check.checked = format!(
        "{} events in the log; the live reader read {}, the reader from the start {}",
        log.len(),
        live.len(),
        fresh.len()
    );
    Ok(check)
}
