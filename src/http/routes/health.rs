use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::startup::AppState;

/// The process is up.
#[utoipa::path(tag = "operations", responses((status = 200, description = "up")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub database: bool,
    /// Names of projectors that are failing; their views are not advancing.
    pub failing_projectors: Vec<String>,
}

/// The database answers and no view Warden reads from is stuck. A projector that only delivers
/// events elsewhere (the NATS publisher) is listed when failing but does not make Warden unready:
/// logins and checks do not depend on it.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = sqlx::query("SELECT 1").execute(&state.pool).await.is_ok();
    let failing: Vec<_> = state
        .projections
        .statuses()
        .into_iter()
        .filter(|s| s.failing)
        .collect();
    let ready = database && !failing.iter().any(|s| s.owns_views);
    let failing_projectors = failing.into_iter().map(|s| s.name.to_string()).collect();
    let body = Readiness {
        ready,
        database,
        failing_projectors,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics.
#[utoipa::path(tag = "operations", responses((status = 200, content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let text = state
        .metrics
        .render(
            &state.pool,
            &state.projections.statuses(),
            state.projections.held_waits(),
            &state.app.credentials.cache().stats(),
        )
        .await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}
