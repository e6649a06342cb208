//! Workspace settings for account holders: members and their roles, "require MFA" (with what
//! turning it on ends), and archival days with the next purge.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;
use warden_aggregates::shared::{AccountId, WorkspaceId};
use warden_aggregates::workspace::Role;

use super::guard::{Posted, SignedIn};
use super::layout::{alert, button_form, csrf_field, notice, page, when, Field, Frame};
use super::security::maybe_when;
use super::{html as answer, refusal, see_other, PageError};
use crate::app::archival::ArchivalRecord;
use crate::app::workspaces::WorkspaceRecord;
use crate::app::{AppError, Personal, ProblemCode};
use crate::startup::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(show)
        .service(add_member)
        .service(change_role)
        .service(remove_member)
        .service(set_policy)
        .service(set_archival);
}

const ROLES: [Role; 3] = [Role::AccountHolder, Role::Supervisor, Role::Agent];

fn role_words(role: Role) -> &'static str {
    match role {
        Role::AccountHolder => "Account holder",
        Role::Supervisor => "Supervisor",
        Role::Agent => "Agent",
    }
}

fn role_named(slug: &str) -> Result<Role, AppError> {
    ROLES
        .into_iter()
        .find(|r| r.as_str() == slug)
        .ok_or_else(|| AppError::with(ProblemCode::MalformedForm, "no such role"))
}

fn frame<'a>(title: &'a str, page: &'a SignedIn) -> Frame<'a> {
    Frame {
        title,
        csrf: &page.csrf.token,
        signed_in: true,
        script: false,
    }
}

fn list_markup(page: &SignedIn, workspaces: &[WorkspaceRecord], error: Option<&str>) -> Markup {
    let body = html! {
        @if workspaces.is_empty() {
            p { "You are not a member of any workspace yet." }
        } @else {
            ul.items {
                @for w in workspaces {
                    li {
                        a href={ "/account/workspaces/" (w.id) } { (w.name) }
                        span.meta { " · " (role_words(w.role)) @if w.mfa_required { " · requires a second factor" } }
                    }
                }
            }
        }
        section aria-labelledby="create-title" {
            h2 id="create-title" { "Create a workspace" }
            form method="post" action="/account/workspaces" novalidate {
                (csrf_field(&page.csrf.token))
                (Field::new("name", "Workspace name", "text", "organization").error(error).render())
                button type="submit" { "Create workspace" }
            }
        }
    };
    super::layout::page(&frame("Workspaces", page), body)
}

#[get("/account/workspaces")]
async fn list(state: web::Data<AppState>, page: SignedIn) -> Result<HttpResponse, PageError> {
    let workspaces = state.app.workspaces.mine(&page.who).await?;
    Ok(super::ok(&page.csrf, list_markup(&page, &workspaces, None)))
}

#[derive(Deserialize)]
struct NameForm {
    #[serde(default)]
    name: String,
}

#[post("/account/workspaces")]
async fn create(
    state: web::Data<AppState>,
    page: SignedIn,
    Posted(form): Posted<NameForm>,
) -> Result<HttpResponse, PageError> {
    let workspaces = &state.app.workspaces;
    let name = form.name.trim().to_string();
    match workspaces.create(&page.who, name, &page.ctx).await {
        Ok(created) => Ok(see_other(&format!("/account/workspaces/{}", created.id))),
        Err(error) => {
            let (status, message) = refusal(error)?;
            let mine = workspaces.mine(&page.who).await?;
            let markup = list_markup(&page, &mine, Some(&message));
            Ok(answer(&page.csrf, status, markup))
        }
    }
}

/// What the workspace page shows.
struct Shown {
    workspace: WorkspaceRecord,
    members: Vec<(Uuid, Personal, Role)>,
    archival: ArchivalRecord,
}

async fn load(state: &AppState, page: &SignedIn, id: Uuid) -> Result<Shown, AppError> {
    let app = &state.app;
    let workspace = app.workspaces.get(&page.who, WorkspaceId(id)).await?;
    let members = match workspace.role {
        Role::AccountHolder => app.workspaces.member_addresses(&workspace).await?,
        _ => Vec::new(),
    };
    let archival = app.archival.get(&page.who, WorkspaceId(id)).await?;
    Ok(Shown {
        workspace,
        members,
        archival,
    })
}

/// The messages a `?notice=` names here.
fn notice_text(slug: Option<&str>) -> Option<&'static str> {
    Some(match slug? {
        "member_added" => "The member is added.",
        "role_changed" => "The role is changed.",
        "member_removed" => "The member is removed.",
        "policy_on" => {
            "Members now need a second factor. Sessions that did not pass one have ended."
        }
        "policy_off" => "Members no longer need a second factor.",
        "archival_set" => "The archival period is saved.",
        _ => return None,
    })
}

fn members_markup(page: &SignedIn, shown: &Shown, error: Option<&str>) -> Markup {
    let base = format!("/account/workspaces/{}", shown.workspace.id);
    html! {
        section id="members" aria-labelledby="members-title" {
            h2 id="members-title" { "Members" }
            (alert(error))
            div.scroll { table {
                thead { tr { th scope="col" { "Member" } th scope="col" { "Role" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody { @for (i, (account, email, role)) in shown.members.iter().enumerate() { tr {
                    td { (email.text()) @if AccountId(*account) == page.who.account_id { " (you)" } }
                    td {
                        form.inline method="post" action={ (base) "/members/" (account) "/role" } {
                            (csrf_field(&page.csrf.token))
                            label.visually-hidden for={ "role-" (i) } { "Role of " (email.text()) }
                            select id={ "role-" (i) } name="role" {
                                @for r in ROLES { option value=(r.as_str()) selected[r == *role] { (role_words(r)) } }
                            }
                            button.secondary type="submit" { "Change role" }
                        }
                    }
                    td { (button_form(&format!("{base}/members/{account}/remove"), &page.csrf.token, "Remove", true)) }
                } } }
            } }
            h3 { "Add a member" }
            form method="post" action={ (base) "/members" } novalidate {
                (csrf_field(&page.csrf.token))
                (Field::new("email", "Their account's email", "email", "off").render())
                div.field {
                    label for="f-new-role" { "Role" }
                    select id="f-new-role" name="role" {
                        @for r in ROLES { option value=(r.as_str()) selected[r == Role::Agent] { (role_words(r)) } }
                    }
                }
                button type="submit" { "Add member" }
            }
        }
    }
}

fn policy_markup(page: &SignedIn, shown: &Shown, error: Option<&str>) -> Markup {
    let base = format!("/account/workspaces/{}", shown.workspace.id);
    let on = shown.workspace.mfa_required;
    html! {
        section id="policy" aria-labelledby="policy-title" {
            h2 id="policy-title" { "Require a second factor" }
            (alert(error))
            @if on {
                p { "On: every member signs in with a second factor (or a passkey, or single sign-on)." }
                form method="post" action={ (base) "/mfa" } {
                    (csrf_field(&page.csrf.token))
                    input type="hidden" name="required" value="false";
                    button.secondary type="submit" { "Stop requiring a second factor" }
                }
            } @else {
                p { "Off: members may sign in with a password alone." }
                p.warning id="policy-warning" { strong { "Turning this on ends every member's session that signed in with a password alone — yours too." } " Members without a second factor are led to set one up at their next sign-in." }
                form method="post" action={ (base) "/mfa" } {
                    (csrf_field(&page.csrf.token))
                    input type="hidden" name="required" value="true";
                    button.danger type="submit" aria-describedby="policy-warning" { "Require a second factor" }
                }
            }
        }
    }
}

fn archival_markup(page: &SignedIn, shown: &Shown, error: Option<&str>) -> Markup {
    let base = format!("/account/workspaces/{}", shown.workspace.id);
    let archival = &shown.archival;
    let days = archival.days.map(|d| d.to_string()).unwrap_or_default();
    html! {
        section id="archival" aria-labelledby="archival-title" {
            h2 id="archival-title" { "Archival" }
            @match &archival.schedule {
                Some(schedule) => p { "Conversation data older than " (days) " days is purged. Next purge: "
                    strong { (when(schedule.next_purge_at)) } ", removing everything before " (when(schedule.cutoff)) "."
                    @if schedule.overdue { " " strong.error { "Overdue: the data services have not confirmed it." } } },
                None => p { "Kept forever: no purge is scheduled." },
            }
            p.meta { "Last purge confirmed: " (maybe_when(archival.last_purge_at)) }
            form method="post" action={ (base) "/archival" } novalidate {
                (csrf_field(&page.csrf.token))
                (Field::new("days", "Keep data for this many days", "number", "off").value(&days).hint("1 to 3650; leave empty to keep forever.").optional().error(error).render())
                button type="submit" { "Save" }
            }
        }
    }
}

/// A form's refusal, for the section it concerns.
struct Refused<'a> {
    section: &'static str,
    message: &'a str,
}

fn show_markup(
    page: &SignedIn,
    shown: &Shown,
    slug: Option<&str>,
    refused: Option<Refused<'_>>,
) -> Markup {
    let error = |section: &str| {
        refused
            .as_ref()
            .filter(|r| r.section == section)
            .map(|r| r.message)
    };
    let holder = shown.workspace.role == Role::AccountHolder;
    let body = html! {
        (notice(notice_text(slug)))
        p { "Your role: " strong { (role_words(shown.workspace.role)) } ". " a href="/account/workspaces" { "All workspaces" } }
        @if holder {
            (members_markup(page, shown, error("members")))
            (policy_markup(page, shown, error("policy")))
            (archival_markup(page, shown, error("archival")))
        } @else {
            p { "Only the workspace's account holders change its settings." }
        }
    };
    page_of(page, &shown.workspace.name, body)
}

fn page_of(signed_in: &SignedIn, title: &str, body: Markup) -> Markup {
    page(&frame(title, signed_in), body)
}

#[derive(Deserialize)]
struct NoticeQuery {
    notice: Option<String>,
}

#[get("/account/workspaces/{id}")]
async fn show(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<Uuid>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    let shown = load(&state, &page, path.into_inner()).await?;
    let markup = show_markup(&page, &shown, query.notice.as_deref(), None);
    Ok(super::ok(&page.csrf, markup))
}

/// After a change: back to the workspace with its notice, or with the refusal in its section.
async fn after(
    state: &AppState,
    page: &SignedIn,
    id: Uuid,
    section: &'static str,
    done: Result<&str, AppError>,
) -> Result<HttpResponse, PageError> {
    let error = match done {
        Ok(slug) => {
            return Ok(see_other(&format!(
                "/account/workspaces/{id}?notice={slug}#{section}"
            )))
        }
        Err(error) => error,
    };
    let (status, message): (StatusCode, String) = refusal(error)?;
    let shown = load(state, page, id).await?;
    let refused = Refused {
        section,
        message: &message,
    };
    let markup = show_markup(page, &shown, None, Some(refused));
    Ok(answer(&page.csrf, status, markup))
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

#[post("/account/workspaces/{id}/members")]
async fn add_member(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<Uuid>,
    Posted(form): Posted<MemberForm>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let workspaces = &state.app.workspaces;
    let done = match role_named(&form.role) {
        Ok(role) => workspaces
            .add_member(
                &page.who,
                WorkspaceId(id),
                form.email.trim(),
                role,
                &page.ctx,
            )
            .await
            .map(|_| "member_added"),
        Err(error) => Err(error),
    };
    after(&state, &page, id, "members", done).await
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    role: String,
}

#[post("/account/workspaces/{id}/members/{account}/role")]
async fn change_role(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<(Uuid, Uuid)>,
    Posted(form): Posted<RoleForm>,
) -> Result<HttpResponse, PageError> {
    let (id, account) = path.into_inner();
    let workspaces = &state.app.workspaces;
    let done = match role_named(&form.role) {
        Ok(role) => workspaces
            .change_role(
                &page.who,
                WorkspaceId(id),
                AccountId(account),
                role,
                &page.ctx,
            )
            .await
            .map(|_| "role_changed"),
        Err(error) => Err(error),
    };
    after(&state, &page, id, "members", done).await
}

#[post("/account/workspaces/{id}/members/{account}/remove")]
async fn remove_member(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<(Uuid, Uuid)>,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Result<HttpResponse, PageError> {
    let (id, account) = path.into_inner();
    let workspaces = &state.app.workspaces;
    let done = workspaces
        .remove_member(&page.who, WorkspaceId(id), AccountId(account), &page.ctx)
        .await
        .map(|_| "member_removed");
    after(&state, &page, id, "members", done).await
}

#[derive(Deserialize)]
struct PolicyForm {
    #[serde(default)]
    required: String,
}

/// Turning the policy on may end the holder's own session: then to sign in again.
#[post("/account/workspaces/{id}/mfa")]
async fn set_policy(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<Uuid>,
    Posted(form): Posted<PolicyForm>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let required = form.required == "true";
    let workspaces = &state.app.workspaces;
    let done = workspaces
        .require_mfa(&page.who, WorkspaceId(id), required, &page.ctx)
        .await
        .map(|_| if required { "policy_on" } else { "policy_off" });
    after(&state, &page, id, "policy", done).await
}

#[derive(Deserialize)]
struct ArchivalForm {
    #[serde(default)]
    days: String,
}

#[post("/account/workspaces/{id}/archival")]
async fn set_archival(
    state: web::Data<AppState>,
    page: SignedIn,
    path: web::Path<Uuid>,
    Posted(form): Posted<ArchivalForm>,
) -> Result<HttpResponse, PageError> {
    let id = path.into_inner();
    let days = match form.days.trim() {
        "" => Ok(None),
        text => text
            .parse::<u32>()
            .map(Some)
            .map_err(|_| AppError::new(ProblemCode::ArchivalDaysOutOfRange)),
    };
    let archival = &state.app.archival;
    let done = match days {
        Ok(days) => archival
            .set_days(&page.who, WorkspaceId(id), days, &page.ctx)
            .await
            .map(|_| "archival_set"),
        Err(error) => Err(error),
    };
    after(&state, &page, id, "archival", done).await
}
