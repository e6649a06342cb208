//! The HTTP server: every route, the contract's docs UI, body and query limits, what answers a
//! request no route takes, and the rate-limit headers and request metrics of every response.

use std::net::TcpListener;
use std::time::Instant;

use actix_cors::Cors;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse};
use actix_web::error::JsonPayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, App as ActixApp, HttpMessage, HttpResponse, HttpServer, ResponseError};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::adapters::rate_limit::RateLimitInfo;
use crate::app::{AppError, ProblemCode};
use crate::http::error::rate_limit_headers;
use crate::http::{openapi, pages};
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

/// A JSON body larger than this is refused before it is read whole.
const MAX_BODY: usize = 64 * 1024;
/// Headers larger than this in all are refused (431) before any handler runs; more than 96
/// headers are refused by the HTTP parser itself.
const MAX_HEADER_BYTES: usize = 16 * 1024;

fn header_bytes(headers: &header::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

pub fn serve(
    listener: TcpListener,
    state: web::Data<AppState>,
    cors_origins: &[String],
) -> anyhow::Result<Server> {
    let cors_origins = cors_origins.to_vec();
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
                    .limit(MAX_BODY)
                    .error_handler(|error, _| json_problem(error).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|_, _| AppError::new(ProblemCode::NotFound).into()),
            )
            .app_data(
                web::FormConfig::default()
                    .limit(MAX_BODY)
                    .error_handler(|error, _| {
                        AppError::with(ProblemCode::MalformedForm, error.to_string()).into()
                    }),
            )
            .app_data(web::QueryConfig::default().error_handler(|error, _| {
                AppError::with(ProblemCode::MalformedQuery, error.to_string()).into()
            }))
            .service(
                SwaggerUi::new("/docs/{_:.*}")
                    .url("/openapi.json", api)
                    .config(Config::default().validator_url("none")),
            )
            .configure(pages::routes)
            .default_service(web::to(unrouted))
            .wrap(cors(&cors_origins))
            .wrap_fn(|req, srv| {
                let started = Instant::now();
                let method = req.method().to_string();
                let route = req
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".to_string());
                let metrics = req
                    .app_data::<web::Data<AppState>>()
                    .map(|s| s.metrics.clone());
                let preflight = is_preflight(&req);
                let api = req.path().starts_with("/v1");
                let page = pages::is_page(req.path());
                let call = match refused_early(&req, page) {
                    Some(refused) => Err(req.into_response(refused.error_response())),
                    None => Ok(srv.call(req)),
                };
                async move {
                    let response = match call {
                        Ok(called) => called.await?.map_into_boxed_body(),
                        Err(refused) => refused,
                    };
                    let response = decorate(response, preflight, api, page);
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

/// What is refused before any handler runs: headers too large, and a post to the account pages
/// that a browser says came from elsewhere.
fn refused_early(req: &ServiceRequest, page: bool) -> Option<AppError> {
    if header_bytes(req.headers()) > MAX_HEADER_BYTES {
        return Some(AppError::new(ProblemCode::HeadersTooLarge));
    }
    if page && req.method() == Method::POST {
        return pages::sent_from_pages(req).err();
    }
    None
}

/// Browsers on the configured origins may call the API: bearer tokens only (no cookies, so no
/// credentials mode), the headers a client sends and reads, preflights cached for an hour.
fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::HeaderName::from_static("ratelimit-limit"),
            header::HeaderName::from_static("ratelimit-remaining"),
            header::HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

fn is_preflight(req: &ServiceRequest) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// What every response gets on its way out: a refused preflight as a problem, the rate-limit
/// headers of a token request, `no-store` on the API (its answers carry tokens, secrets and
/// personal data), the account pages' own headers, and `nosniff` everywhere.
fn decorate<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
    preflight: bool,
    api: bool,
    page: bool,
) -> ServiceResponse<BoxBody> {
    let mut response = if preflight && !response.status().is_success() {
        let (req, _) = response.into_parts();
        let refused = AppError::new(ProblemCode::OriginNotAllowed).error_response();
        ServiceResponse::new(req, refused)
    } else {
        response.map_into_boxed_body()
    };
    let rate = response
        .request()
        .extensions()
        .get::<RateLimitInfo>()
        .copied();
    let headers = response.headers_mut();
    if let Some(rate) = rate {
        rate_limit_headers(&rate, |name, value| {
            headers.insert(name, value);
        });
    }
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if page {
        pages::page_headers(headers);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A JSON body that cannot be taken: too large (refused before it is read whole), or not JSON
/// of the operation's shape.
fn json_problem(error: JsonPayloadError) -> AppError {
    match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            AppError::with(
                ProblemCode::PayloadTooLarge,
                format!("a body has at most {MAX_BODY} bytes"),
            )
        }
        other => AppError::with(ProblemCode::MalformedJson, other.to_string()),
    }
}
