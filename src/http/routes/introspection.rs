use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::introspection::TokenKind;
use crate::app::AppError;
use crate::http::error::Problem;
use crate::http::extractors::Introspector;
use crate::http::routes::tokens::ScopeName;
use crate::http::routes::workspaces::RoleName;
use crate::startup::AppState;

#[derive(Deserialize, ToSchema)]
pub struct IntrospectRequest {
    /// A session token (`wss_…`) or an API token (`wat_…`).
    #[schema(value_type = String)]
    pub token: SecretString,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKindName {
    Session,
    ApiToken,
}

#[derive(Serialize, ToSchema)]
pub struct WorkspaceRole {
    pub id: Uuid,
    pub role: RoleName,
}

/// `{active: false}` alone when the token is not live.
#[derive(Serialize, ToSchema)]
pub struct IntrospectResponse {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<TokenKindName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<ScopeName>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<Vec<WorkspaceRole>>,
    /// The session passed a second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_passed: Option<bool>,
    /// The session may only enroll a second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_enrollment_required: Option<bool>,
    /// Until when the reporting PIN unlocked history for this session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_unlocked_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Ask Warden whether a credential is live, whose it is and what it may do (API token with the
/// `introspect` scope).
#[utoipa::path(
    tag = "introspection",
    security(("api_token" = ["introspect"])),
    request_body = IntrospectRequest,
    responses(
        (status = 200, body = IntrospectResponse),
        (status = 403, description = "insufficient_scope", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/introspect")]
#[tracing::instrument(skip_all)]
pub async fn introspect(
    state: web::Data<AppState>,
    Introspector(who): Introspector,
    body: web::Json<IntrospectRequest>,
) -> Result<HttpResponse, AppError> {
    let found = state
        .app
        .introspection
        .introspect(&who, &body.token)
        .await?;
    let response = match found {
        None => IntrospectResponse {
            active: false,
            account_id: None,
            kind: None,
            scopes: None,
            workspaces: None,
            mfa_passed: None,
            mfa_enrollment_required: None,
            pin_unlocked_until: None,
            expires_at: None,
        },
        Some(found) => IntrospectResponse {
            active: true,
            account_id: Some(found.account_id),
            kind: Some(match found.kind {
                TokenKind::Session => TokenKindName::Session,
                TokenKind::ApiToken => TokenKindName::ApiToken,
            }),
            scopes: Some(found.scopes.into_iter().map(ScopeName::from).collect()),
            workspaces: Some(
                found
                    .workspaces
                    .into_iter()
                    .filter_map(|(id, role)| {
                        warden_aggregates::workspace::Role::parse(&role).map(|role| WorkspaceRole {
                            id,
                            role: role.into(),
                        })
                    })
                    .collect(),
            ),
            mfa_passed: Some(found.mfa_passed),
            mfa_enrollment_required: Some(found.enrollment_only),
            pin_unlocked_until: found.pin_unlocked_until,
            expires_at: found.expires_at,
        },
    };
    Ok(HttpResponse::Ok().json(response))
}
