//! The OpenAPI document. Routes are registered through utoipa-actix-web so that every served
//! route is in the document; `openapi/openapi.json` is this document, committed.

use actix_web::App;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;

use crate::http::routes::{
    account, admin, audit, chain, events, health, introspection, mfa, passkeys, pin, sessions, sso,
    tokens, workspaces,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Warden",
        description = "Event-sourced account security: accounts, passwords, sessions. Errors are \
                       RFC 9457 problem documents with a stable `code`."
    ),
    modifiers(&BearerTokens),
    components(schemas(crate::http::error::Problem)),
    tags(
        (name = "accounts", description = "Registration, profile, password change and reset"),
        (name = "sessions", description = "Login, logout and login security"),
        (name = "tokens", description = "API access tokens, limited to 60 requests a minute each"),
        (name = "mfa", description = "TOTP, recovery codes and the login's second step"),
        (name = "passkeys", description = "Passkeys: registration, the second step, passwordless sign-in"),
        (name = "audit", description = "The audit log for auditors and workspace supervisors"),
        (name = "events", description = "The gap-free event stream, in commit order, as CloudEvents"),
        (name = "introspection", description = "For services that ask Warden about a credential"),
        (name = "pin", description = "The reporting PIN"),
        (name = "workspaces", description = "Workspaces, members, roles and policies"),
        (name = "sso", description = "Single sign-on through OpenID Connect providers"),
        (name = "admin", description = "Support actions of platform administrators"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("wss_ session token")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("wat_ API access token")
                    .build(),
            ),
        );
    }
}

use crate::app::ProblemCode;

pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(account::register)
        .service(account::me)
        .service(account::change_password)
        .service(account::request_password_reset)
        .service(account::confirm_password_reset)
        .service(account::get_notices)
        .service(account::set_notices)
        .service(sessions::log_in)
        .service(sessions::log_out)
        .service(sessions::list)
        .service(sessions::end)
        .service(sessions::revoke_all)
        .service(tokens::create)
        .service(tokens::list)
        .service(tokens::revoke)
        .service(mfa::second_step)
        .service(mfa::enroll)
        .service(mfa::confirm)
        .service(mfa::disable)
        .service(mfa::recovery_codes)
        .service(mfa::email_enroll)
        .service(mfa::email_confirm)
        .service(mfa::email_disable)
        .service(mfa::email_code)
        .service(admin::unlock)
        .service(admin::mfa_reset)
        .service(admin::grant_auditor)
        .service(admin::revoke_auditor)
        .service(admin::erase)
        .service(admin::request_access)
        .service(admin::access_requests)
        .service(admin::approve)
        .service(admin::deny)
        .service(introspection::introspect)
        .service(audit::log)
        .service(audit::export)
        .service(audit::workspace_log)
        .service(audit::history)
        .service(audit::state_at)
        .service(chain::verify)
        .service(chain::public_key)
        .service(chain::export)
        .service(events::page)
        .service(events::live)
        .service(pin::set)
        .service(pin::remove)
        .service(pin::verify)
        .service(workspaces::create)
        .service(workspaces::show)
        .service(workspaces::add_member)
        .service(workspaces::change_role)
        .service(workspaces::remove_member)
        .service(workspaces::mfa_policy)
        .service(workspaces::archival)
        .service(workspaces::set_archival)
        .service(workspaces::schedule)
        .service(workspaces::record_purge)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics);
    single_sign_on(cfg);
    passkeys(cfg);
}

fn single_sign_on(cfg: &mut ServiceConfig) {
    cfg.service(sso::admin_create)
        .service(sso::admin_list)
        .service(sso::admin_show)
        .service(sso::admin_change)
        .service(sso::admin_remove)
        .service(sso::workspace_create)
        .service(sso::workspace_list)
        .service(sso::workspace_show)
        .service(sso::workspace_change)
        .service(sso::workspace_remove)
        .service(sso::buttons)
        .service(sso::start)
        .service(sso::callback)
        .service(sso::exchange)
        .service(sso::link)
        .service(sso::identities)
        .service(sso::unlink)
        .service(sso::backchannel_logout);
}

fn passkeys(cfg: &mut ServiceConfig) {
    cfg.service(passkeys::start_registration)
        .service(passkeys::finish_registration)
        .service(passkeys::list)
        .service(passkeys::reauthentication_options)
        .service(passkeys::rename)
        .service(passkeys::remove)
        .service(passkeys::second_factor_options)
        .service(passkeys::sign_in_options)
        .service(passkeys::sign_in);
}

/// The document as served at `/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let api = App::new()
        .into_utoipa_app()
        .openapi(base())
        .configure(routes)
        .split_for_parts()
        .1;
    finish(api)
}

/// The methods each documented path answers to, for telling 405 from 404.
pub struct MethodsByPath(Vec<(Vec<String>, String)>);

impl From<&utoipa::openapi::OpenApi> for MethodsByPath {
    fn from(api: &utoipa::openapi::OpenApi) -> Self {
        let paths = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path.split('/').map(str::to_owned).collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter(|(_, present)| *present)
                .map(|(method, _)| method)
                .collect::<Vec<_>>()
                .join(", ");
                (segments, methods)
            })
            .collect();
        Self(paths)
    }
}

impl MethodsByPath {
    /// The `Allow` value for `path`, if a documented path template matches it.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let asked: Vec<&str> = path.split('/').collect();
        let mut allowed: Vec<&str> = self
            .0
            .iter()
            .filter(|(template, _)| {
                template.len() == asked.len()
                    && template
                        .iter()
                        .zip(&asked)
                        .all(|(t, a)| t == a || (t.starts_with('{') && !a.is_empty()))
            })
            .flat_map(|(_, methods)| methods.split(", "))
            .collect();
        allowed.sort_unstable();
        allowed.dedup();
        (!allowed.is_empty()).then(|| allowed.join(", "))
    }
}

/// Adds the problems any operation can answer with, where its own annotation does not name the
/// status already: a body or query that cannot be read, a path that names nothing, a missing or
/// insufficient credential, a spent rate limit, a database that is down.
pub fn finish(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let parameters = operation.parameters.as_deref().unwrap_or_default();
            let in_path = parameters
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Path));
            let in_query = parameters
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Query));
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let responses = &mut operation.responses.responses;
            if operation.request_body.is_some() || in_query {
                add(
                    responses,
                    "400",
                    "malformed_json, malformed_query: the request cannot be read",
                );
            }
            if operation.request_body.is_some() {
                add(responses, "413", "payload_too_large: the body is too large");
            }
            if in_path {
                add(responses, "404", "not_found: the path names nothing");
            }
            if secured {
                add(
                    responses,
                    "401",
                    "unauthenticated: a valid bearer token is required",
                );
                add(
                    responses,
                    "403",
                    "insufficient_scope, session_required: the credential may not do this",
                );
                add(
                    responses,
                    "429",
                    "rate_limited: the API token spent its 60 requests this minute (Retry-After)",
                );
            }
            add(
                responses,
                "503",
                "database_unavailable, views_lagging, contended: try again shortly",
            );
            for (_, response) in responses.iter_mut() {
                if let RefOr::T(response) = response {
                    describe_problems(response);
                }
            }
        }
    }
    api
}

/// The problem codes a problem response's description names: the words before any `:`.
fn named_codes(response: &Response) -> Option<Vec<&str>> {
    response.content.get("application/problem+json")?;
    let names = response.description.split(':').next().unwrap_or_default();
    Some(names.split(',').map(str::trim).collect())
}

/// Rewrites a problem response's description as the list of its codes with their titles, so
/// the contract says what `ProblemCode` says.
fn describe_problems(response: &mut Response) {
    let Some(codes) = named_codes(response) else {
        return;
    };
    let lines: Vec<String> = codes
        .iter()
        .filter_map(|name| ProblemCode::parse(name))
        .map(|code| format!("- `{code}`: {}", code.title()))
        .collect();
    if !lines.is_empty() {
        response.description = lines.join("\n");
    }
}

/// Problem responses that name a code `ProblemCode` does not list, or one whose status is
/// another: `(method path, status, name)`. Empty when the contract and the list agree.
pub fn misnamed_problem_codes() -> Vec<(String, String, String)> {
    let api = App::new()
        .into_utoipa_app()
        .openapi(base())
        .configure(routes)
        .split_for_parts()
        .1;
    let mut wrong = Vec::new();
    for (path, item) in &api.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
            ("PATCH", &item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            for (status, response) in &operation.responses.responses {
                let RefOr::T(response) = response else {
                    continue;
                };
                for name in named_codes(response).unwrap_or_default() {
                    let fits = ProblemCode::parse(name)
                        .is_some_and(|code| code.status().to_string() == *status);
                    if !fits {
                        wrong.push((format!("{method} {path}"), status.clone(), name.to_string()));
                    }
                }
            }
        }
    }
    wrong
}

fn add(
    responses: &mut std::collections::BTreeMap<String, RefOr<Response>>,
    status: &str,
    description: &str,
) {
    responses.entry(status.to_string()).or_insert_with(|| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    });
}

pub fn to_json() -> anyhow::Result<String> {
    Ok(document().to_pretty_json()? + "\n")
}
