use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{get, web, HttpRequest, HttpResponse};
use futures_util::stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warden_projections::Cursor;

use crate::app::stream::{parse_cursor, CloudEvent, PAGE_MAX};
use crate::app::AppError;
use crate::app::Authenticated;
use crate::http::error::Problem;
use crate::startup::AppState;

/// How often an idle stream looks at the log without being told of a commit (a transaction that
/// held the horizon back may have ended without one).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// An idle stream sends a comment this often so that proxies keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
const STREAM_PAGE: i64 = 500;
/// The least time between two pages of a live stream at the head of the log: under a load of
/// commands it sends many events a page instead of a page for every few commits, each a query.
/// Far behind the head (full pages), it sends as fast as the client reads.
const LIVE_PACE: Duration = Duration::from_millis(20);

#[derive(Deserialize, IntoParams)]
pub struct EventsQuery {
    /// The `next` (or an event's `position`) from an earlier read; omit to start at the
    /// beginning of the log.
    pub after: Option<String>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct EventsPage {
    /// In commit order.
    pub events: Vec<CloudEvent>,
    /// Pass as `after` to read on. Equal to the request's `after` when nothing new has
    /// committed yet.
    pub next: String,
}

fn start(after: Option<&str>) -> Result<Cursor, AppError> {
    after
        .map(parse_cursor)
        .transpose()
        .map(Option::unwrap_or_default)
}

/// The global event stream, one page in commit order (admins, `events:read` tokens).
#[utoipa::path(
    tag = "events",
    security(("session" = []), ("api_token" = ["events:read"])),
    params(EventsQuery),
    responses(
        (status = 200, body = EventsPage),
        (status = 400, description = "invalid_cursor, malformed_query", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "admin_required", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/events")]
#[tracing::instrument(skip_all)]
pub async fn page(
    state: web::Data<AppState>,
    who: Authenticated,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, AppError> {
    state.app.stream.require_reader(&who).await?;
    let after = start(query.after.as_deref())?;
    let limit = query.limit.unwrap_or(100).clamp(1, PAGE_MAX);
    let events = state.app.stream.page(after, limit).await?;
    let next = events
        .last()
        .map_or_else(|| after.to_string(), |e| e.position.clone());
    Ok(HttpResponse::Ok().json(EventsPage { events, next }))
}

fn frame(event: &CloudEvent) -> Option<Vec<u8>> {
    let data = serde_json::to_string(event).ok()?;
    Some(
        format!(
            "id: {}\nevent: {}\ndata: {}\n\n",
            event.position, event.event_type, data
        )
        .into_bytes(),
    )
}

/// The global event stream, live, as server-sent events (admins, `events:read` tokens). Each
/// event's `id:` is its position: a client that reconnects with `Last-Event-ID` (or `?after=`)
/// continues right after the last event it received.
#[utoipa::path(
    tag = "events",
    security(("session" = []), ("api_token" = ["events:read"])),
    params(
        ("after" = Option<String>, Query, description = "start after this position (else `Last-Event-ID`, else the beginning)"),
        ("Last-Event-ID" = Option<String>, Header, description = "the last `id:` received"),
    ),
    responses(
        (status = 200, description = "`id:` position, `event:` type, `data:` the CloudEvent as JSON", content_type = "text/event-stream"),
        (status = 400, description = "invalid_cursor", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "admin_required", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/events/stream")]
#[tracing::instrument(skip_all)]
pub async fn live(
    state: web::Data<AppState>,
    who: Authenticated,
    request: HttpRequest,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, AppError> {
    state.app.stream.require_reader(&who).await?;
    let resume = request
        .headers()
        .get("Last-Event-ID")
        .map(|v| v.to_str().unwrap_or("-"));
    let after = start(query.after.as_deref().or(resume))?;
    let commits = state.projections.commits();
    let frames = stream::unfold(
        (state.into_inner(), after, commits, None),
        |(state, mut after, mut commits, paced)| async move {
            if let Some(until) = paced {
                tokio::time::sleep_until(until).await;
            }
            let idle_since = tokio::time::Instant::now();
            loop {
                let events = match state.app.stream.page(after, STREAM_PAGE).await {
                    Ok(events) => events,
                    Err(error) => {
                        // The client reconnects with its Last-Event-ID and misses nothing.
                        tracing::warn!(%error, "event stream ended");
                        return None;
                    }
                };
                if let Some(last) = events.last() {
                    after = last.position.parse().unwrap_or(after);
                    let chunk: Vec<u8> = events.iter().filter_map(frame).flatten().collect();
                    let at_head = (events.len() as i64) < STREAM_PAGE;
                    let paced = at_head.then(|| tokio::time::Instant::now() + LIVE_PACE);
                    return Some((
                        Ok::<Bytes, AppError>(Bytes::from(chunk)),
                        (state, after, commits, paced),
                    ));
                }
                if idle_since.elapsed() >= KEEP_ALIVE {
                    let ping = Bytes::from_static(b": keep-alive\n\n");
                    return Some((Ok(ping), (state, after, commits, None)));
                }
                tokio::select! {
                    changed = commits.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep(IDLE_POLL).await;
                        }
                    }
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(frames))
}
