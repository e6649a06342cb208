//! The pages of compliance auditors (platform auditors and admins): the audit log with its
//! filters and pages, a chart of sign-ins, failures, locks and revocations per day, an
//! account's history as a timeline with its state at a chosen instant, the chain's
//! verification, and the NDJSON export. Read-only: nothing here changes anything.

use std::collections::HashMap;

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;
use warden_projections::queries::audit_log::{AuditFilter, Series};
use warden_projections::Cursor;

use super::chart;
use super::guard::SignedIn;
use super::layout::{page, when, Frame};
use super::{ok, PageError};
use crate::app::audit::AuditEntry;
use crate::app::stream::parse_cursor;
use crate::app::{AppError, ProblemCode};
use crate::http::routes::audit::ndjson;
use crate::startup::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(log)
        .service(export)
        .service(chain)
        .service(account);
}

/// Days the chart covers.
const CHART_DAYS: i64 = 30;
const PAGE: i64 = 50;

fn frame<'a>(title: &'a str, page: &'a SignedIn) -> Frame<'a> {
    Frame {
        title,
        csrf: &page.csrf.token,
        signed_in: true,
        script: false,
    }
}

fn nav() -> Markup {
    html! {
        nav.tabs aria-label="Audit" {
            a href="/account/audit" { "Audit log" }
            a href="/account/audit/chain" { "Chain verification" }
        }
    }
}

/// The filters as the form sends them: empty fields are no filter.
#[derive(Deserialize, Default)]
struct LogQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    cursor: Option<String>,
}

fn given(text: &str) -> Option<String> {
    Some(text.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn day(text: &str, field: &str) -> Result<Option<DateTime<Utc>>, AppError> {
    given(text)
        .map(|t| {
            NaiveDate::parse_from_str(&t, "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
                .map_err(|_| {
                    AppError::with(ProblemCode::MalformedQuery, format!("`{field}` is a date"))
                })
        })
        .transpose()
}

impl LogQuery {
    fn filter(&self) -> Result<AuditFilter, AppError> {
        let subject = given(&self.subject)
            .map(|s| Uuid::parse_str(&s))
            .transpose()
            .map_err(|_| {
                AppError::with(ProblemCode::MalformedQuery, "`subject` is an account id")
            })?;
        Ok(AuditFilter {
            actor: given(&self.actor),
            subject,
            action: given(&self.action),
            outcome: given(&self.outcome),
            from: day(&self.from, "from")?,
            // The whole of the last day.
            to: day(&self.to, "to")?.map(|d| d + Duration::days(1)),
            workspace: None,
        })
    }

    fn cursor(&self) -> Result<Option<Cursor>, AppError> {
        self.cursor.as_deref().map(parse_cursor).transpose()
    }

    /// This query's filters as a query string, for the export and the next page.
    fn filters(&self) -> String {
        let pairs = [
            ("actor", &self.actor),
            ("subject", &self.subject),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ];
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", urlencoding::encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn filter_form(query: &LogQuery) -> Markup {
    let text = |name: &str, label: &str, value: &str, hint: &str| {
        html! {
            div.field {
                label for={ "f-" (name) } { (label) }
                input id={ "f-" (name) } name=(name) type="text" value=(value) aria-describedby={ "f-" (name) "-hint" };
                p.hint id={ "f-" (name) "-hint" } { (hint) }
            }
        }
    };
    html! {
        form.filters method="get" action="/account/audit" {
            (text("actor", "Actor", &query.actor, "An account id, or anonymous."))
            (text("subject", "Subject", &query.subject, "The account id the event is about."))
            (text("action", "Action", &query.action, "For example account.session.started."))
            div.field {
                label for="f-outcome" { "Outcome" }
                select id="f-outcome" name="outcome" {
                    @for (value, words) in [("", "Any"), ("success", "Success"), ("failure", "Failure"), ("refused", "Refused")] {
                        option value=(value) selected[query.outcome == value] { (words) }
                    }
                }
            }
            div.field { label for="f-from" { "From" } input id="f-from" name="from" type="date" value=(query.from); }
            div.field { label for="f-to" { "To" } input id="f-to" name="to" type="date" value=(query.to); }
            button type="submit" { "Filter" }
        }
    }
}

fn entries_table(entries: &[AuditEntry]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th scope="col" { "Time" } th scope="col" { "Action" } th scope="col" { "Outcome" }
                th scope="col" { "Actor" } th scope="col" { "Subject" } th scope="col" { "From" } } }
            tbody { @for entry in entries { tr {
                td { (when(entry.at)) }
                td { code { (entry.action) } @if let Some(reason) = &entry.reason { " (" (reason) ")" } }
                td { (entry.outcome) }
                td { @if let Ok(id) = Uuid::parse_str(&entry.actor) { a href={ "/account/audit/accounts/" (id) } { (short(&entry.actor)) } } @else { (entry.actor) } }
                td { @if let Some(subject) = entry.subject { a href={ "/account/audit/accounts/" (subject) } { (short(&subject.to_string())) } } @else { "—" } }
                td { (entry.ip.as_ref().map(|ip| ip.text().to_string()).unwrap_or_else(|| "—".into())) }
            } } }
        } }
    }
}

/// An id's last group (time-ordered ids share their first), enough to tell rows apart; the
/// link holds the whole.
fn short(id: &str) -> String {
    id.rsplit('-').next().unwrap_or(id).to_string()
}

#[get("/account/audit")]
async fn log(
    state: web::Data<AppState>,
    page: SignedIn,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, PageError> {
    let audit = &state.app.audit;
    let daily = audit.daily(&page.who, CHART_DAYS).await?;
    let filter = query.filter()?;
    let entries = audit.page(&filter, query.cursor()?, PAGE).await?;
    let next = (entries.len() as i64 == PAGE)
        .then(|| entries.last().map(|e| e.cursor.to_string()))
        .flatten();
    let filters = query.filters();
    let today = state.app.commands.clock().now().date_naive();
    let body = html! {
        (nav())
        section aria-labelledby="chart-title" {
            h2 id="chart-title" { "The last " (CHART_DAYS) " days" }
            (chart::daily(&by_day(&daily), today, CHART_DAYS))
        }
        section aria-labelledby="log-title" {
            h2 id="log-title" { "Entries, newest first" }
            (filter_form(&query))
            p { a href={ "/account/audit/export?" (filters) } download="warden-audit.ndjson" { "Export these entries (NDJSON)" } }
            @if entries.is_empty() { p { "No entry matches." } } @else { (entries_table(&entries)) }
            @if let Some(next) = next {
                p { a href={ "/account/audit?" (filters) @if !filters.is_empty() { "&" } "cursor=" (next) } { "Older entries" } }
            }
        }
    };
    Ok(ok(&page.csrf, page_of(&page, "Audit", body)))
}

fn page_of(signed_in: &SignedIn, title: &str, body: Markup) -> Markup {
    page(&frame(title, signed_in), body)
}

fn by_day(rows: &[(NaiveDate, Series, i64)]) -> HashMap<(NaiveDate, Series), i64> {
    rows.iter().map(|(d, s, n)| ((*d, *s), *n)).collect()
}

#[get("/account/audit/export")]
async fn export(
    state: web::Data<AppState>,
    page: SignedIn,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, PageError> {
    state.app.audit.require_auditor(&page.who).await?;
    let filter = query.filter()?;
    let start = query.cursor()?;
    let mut response = ndjson(state, filter, start);
    response.headers_mut().insert(
        actix_web::http::header::CONTENT_DISPOSITION,
        actix_web::http::header::HeaderValue::from_static(
            "attachment; filename=\"warden-audit.ndjson\"",
        ),
    );
    Ok(response)
}

#[get("/account/audit/chain")]
async fn chain(state: web::Data<AppState>, page: SignedIn) -> Result<HttpResponse, PageError> {
    let audit = &state.app.audit;
    let verification = audit
        .verify_chain(&page.who, state.trusted_keys.clone())
        .await?;
    let body = html! {
        (nav())
        section aria-labelledby="status-title" {
            h2 id="status-title" { "Status" }
            @if verification.ok {
                p.notice role="status" id="chain-status" { "The chain verifies: " (verification.events_checked) " events, each linked to the one before." }
            } @else {
                p.error.banner role="alert" id="chain-status" { "The chain does not verify at position "
                    (verification.first_bad_position.as_deref().unwrap_or("?")) ": " (verification.problem.as_deref().unwrap_or("")) }
            }
            dl {
                dt { "Signed through" } dd id="signed-through" { (verification.signed_through.as_deref().unwrap_or("nothing signed yet")) }
                dt { "Checkpoints verified" } dd { (verification.checkpoints_verified) }
                @if let Some(head) = &verification.head {
                    dt { "Head" } dd { (head.position) " · " code.secret { (head.chain_hash) } }
                }
            }
            p { "Check it offline: " code { "warden verify --export FILE --public-key FILE" } " with the chain from " code { "/v1/audit/chain" } " and the keys from " code { "/v1/audit/public-key" } "." }
        }
    };
    Ok(ok(&page.csrf, page_of(&page, "Audit chain", body)))
}

#[derive(Deserialize)]
struct AtQuery {
    /// `YYYY-MM-DDTHH:MM` (a `datetime-local` field, read as UTC).
    at: Option<String>,
}

fn instant(text: &str) -> Result<DateTime<Utc>, AppError> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .map(|t| t.and_utc())
        .map_err(|_| AppError::with(ProblemCode::MalformedQuery, "`at` is a date and a time"))
}

#[get("/account/audit/accounts/{id}")]
async fn account(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<Uuid>,
    query: web::Query<AtQuery>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let history = &state.app.history;
    let events = history.account_history(&page.who, id).await?;
    let at = query.at.as_deref().filter(|t| !t.is_empty());
    let state_at = match at {
        Some(text) => Some(
            history
                .account_state_at(&page.who, id, instant(text)?)
                .await?,
        ),
        None => None,
    };
    let body = html! {
        (nav())
        section aria-labelledby="at-title" {
            h2 id="at-title" { "State at an instant" }
            form method="get" action={ "/account/audit/accounts/" (id) } {
                div.field {
                    label for="f-at" { "Date and time (UTC)" }
                    input id="f-at" name="at" type="datetime-local" value=(at.unwrap_or_default()) required;
                }
                button type="submit" { "Show the state" }
            }
            @if let Some(s) = &state_at {
                dl id="state-at" {
                    dt { "Events applied" } dd { (s.events_applied) }
                    dt { "Registered" } dd { (yes(s.registered)) }
                    dt { "Second factors" } dd { @if s.mfa_methods.is_empty() { "none" } @else { (s.mfa_methods.join(", ")) } }
                    dt { "Recovery codes left" } dd { (s.recovery_codes_remaining) }
                    dt { "Locked" } dd { (yes(s.locked)) }
                    dt { "Live sessions" } dd { (s.live_sessions) }
                    dt { "Live API tokens" } dd { (s.live_api_tokens) }
                    dt { "Administrator" } dd { (yes(s.is_admin)) }
                }
            }
        }
        section aria-labelledby="timeline-title" {
            h2 id="timeline-title" { "Timeline, oldest first" }
            ol.timeline {
                @for event in &events {
                    li {
                        span.meta { (event.data.get("at").and_then(|v| v.as_str()).unwrap_or("")) " · #" (event.sequence) }
                        br;
                        code { (event.event_type) }
                        details { summary { "Fields" } pre { (serde_json::to_string_pretty(&event.data).unwrap_or_default()) } }
                    }
                }
            }
        }
    };
    Ok(ok(&page.csrf, page_of(&page, "Account history", body)))
}

fn yes(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}
