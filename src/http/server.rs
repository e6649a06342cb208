//! The HTTP server: every route, the contract's docs UI, body and query limits, what answers a
//! request no route takes, and the rate-limit headers and request metrics of every response.

use std::net::TcpListener;
use std::time::Instant;

use actix_web::dev::{Server, Service};
use actix_web::{web, App as ActixApp, HttpMessage, HttpResponse, HttpServer};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::adapters::rate_limit::RateLimitInfo;
use crate::app::{AppError, ProblemCode};
use crate::http::error::rate_limit_headers;
use crate::http::openapi;
use crate::startup::AppState;

/// No route took the request: a known path with another method is 405 with `Allow`, anything
/// else 404.
async fn unrouted(
    req: actix_web::HttpRequest,
    methods: web::Data<openapi::MethodsByPath>,
) -> Result<HttpResponse, AppError> {
    match methods.allowed(req.path()) {
        Some(allowed) => Err(AppError::MethodNotAllowed { allowed }),
        None => Err(AppError::new(ProblemCode::NotFound)),
    }
}

pub fn serve(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let server = HttpServer::new(move || {
        let (app, api) = ActixApp::new()
            .into_utoipa_app()
            .openapi(openapi::base())
            .configure(openapi::routes)
            .split_for_parts();
        let api = openapi::finish(api);
        let methods = web::Data::new(openapi::MethodsByPath::from(&api));
        app.app_data(state.clone())
            .app_data(methods)
            .app_data(
                web::JsonConfig::default()
                    .limit(64 * 1024)
                    .error_handler(|error, _| {
                        AppError::with(ProblemCode::MalformedJson, error.to_string()).into()
                    }),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|_, _| AppError::new(ProblemCode::NotFound).into()),
            )
            .app_data(web::QueryConfig::default().error_handler(|error, _| {
                AppError::with(ProblemCode::MalformedQuery, error.to_string()).into()
            }))
            .service(
                SwaggerUi::new("/docs/{_:.*}")
                    .url("/openapi.json", api)
                    .config(Config::default().validator_url("none")),
            )
            .default_service(web::to(unrouted))
            .wrap_fn(|req, srv| {
                let started = Instant::now();
                let method = req.method().to_string();
                let route = req
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".to_string());
                let metrics = req
                    .app_data::<web::Data<AppState>>()
                    .map(|s| s.metrics.clone());
                let response = srv.call(req);
                async move {
                    let mut response = response.await?;
                    let rate = response
                        .request()
                        .extensions()
                        .get::<RateLimitInfo>()
                        .copied();
                    if let Some(rate) = rate {
                        let headers = response.headers_mut();
                        rate_limit_headers(&rate, |name, value| {
                            headers.insert(name, value);
                        });
                    }
                    if let Some(metrics) = metrics {
                        let seconds = started.elapsed().as_secs_f64();
                        metrics.request(&method, &route, response.status().as_u16(), seconds);
                    }
                    Ok(response)
                }
            })
    })
    .listen(listener)?
    .run();
    Ok(server)
}
