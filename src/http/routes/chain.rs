use actix_web::web::Bytes;
use actix_web::{get, web, HttpResponse};
use futures_util::stream;
use serde::Serialize;
use utoipa::ToSchema;
use warden_projections::audit_chain::{self, key_id, Verification};

use crate::app::AppError;
use crate::app::Authenticated;
use crate::http::error::Problem;
use crate::settings::public_key_to_base64;
use crate::startup::AppState;

const EXPORT_PAGE: i64 = 1000;

#[derive(Serialize, ToSchema)]
pub struct ChainHead {
    pub position: String,
    pub events: i64,
    /// Hex SHA-256.
    pub chain_hash: String,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyResponse {
    /// Every chained event matches the log, the chain links, and every checkpoint's signature
    /// and hash hold.
    pub ok: bool,
    pub events_checked: i64,
    pub head: Option<ChainHead>,
    /// The first event whose stored form, place or chain does not match.
    pub first_bad_position: Option<String>,
    /// What was wrong there.
    pub problem: Option<String>,
    pub checkpoints_verified: i64,
    /// Every event up to this position is covered by a valid signature.
    pub signed_through: Option<String>,
}

impl From<Verification> for VerifyResponse {
    fn from(v: Verification) -> Self {
        Self {
            ok: v.ok,
            events_checked: v.events_checked,
            head: v.head.map(|h| ChainHead {
                position: h.position,
                events: h.events,
                chain_hash: h.chain_hash,
            }),
            first_bad_position: v.first_bad_position,
            problem: v.problem,
            checkpoints_verified: v.checkpoints_verified,
            signed_through: v.signed_through,
        }
    }
}

/// Recomputes the audit chain from the stored events and checks every signed checkpoint
/// (platform admins, `audit:read` tokens).
#[utoipa::path(
    operation_id = "verify_chain",
    tag = "audit",
    security(("session" = []), ("api_token" = ["audit:read"])),
    responses(
        (status = 200, body = VerifyResponse),
        (status = 403, description = "auditor_required, admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/audit/verify")]
#[tracing::instrument(skip_all)]
pub async fn verify(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, AppError> {
    let audit = &state.app.audit;
    let verification = audit.verify_chain(&who, state.trusted_keys.clone()).await?;
    Ok(HttpResponse::Ok().json(VerifyResponse::from(verification)))
}

#[derive(Serialize, ToSchema)]
pub struct PublicKeyResponse {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The key signing now: the first 16 hex digits of its SHA-256. Each checkpoint names the
    /// key that signed it.
    pub key_id: String,
    /// The key signing now: 32 bytes, base64.
    pub public_key: String,
    /// Every key this server trusts for its checkpoints (the current one and those rotated out),
    /// with what each signed. `warden verify --public-key` takes this whole answer.
    pub keys: Vec<TrustedKey>,
}

#[derive(Serialize, ToSchema)]
pub struct TrustedKey {
    pub key_id: String,
    /// 32 bytes, base64.
    pub public_key: String,
    /// It signs new checkpoints.
    pub current: bool,
    /// How many checkpoints it signed.
    pub checkpoints: i64,
    /// The chain lengths its first and last checkpoints cover (absent when it signed none).
    pub first_events: Option<i64>,
    pub last_events: Option<i64>,
}

/// The keys that sign and signed the audit chain's checkpoints, for checking an export offline
/// (`warden verify --export FILE --public-key FILE`). Public: it proves, it grants nothing.
#[utoipa::path(
    tag = "audit",
    responses((status = 200, body = PublicKeyResponse))
)]
#[get("/v1/audit/public-key")]
#[tracing::instrument(skip_all)]
pub async fn public_key(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let current = state.signing_key.verifying_key();
    let signed = audit_chain::signed_by_key(&state.pool).await?;
    let keys = state
        .trusted_keys
        .iter()
        .map(|(id, key)| {
            let by = signed.iter().find(|s| &s.key_id == id);
            TrustedKey {
                key_id: id.clone(),
                public_key: public_key_to_base64(key),
                current: *key == current,
                checkpoints: by.map_or(0, |s| s.checkpoints),
                first_events: by.map(|s| s.first_events),
                last_events: by.map(|s| s.last_events),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(PublicKeyResponse {
        algorithm: "Ed25519",
        key_id: key_id(&current),
        public_key: public_key_to_base64(&current),
        keys,
    }))
}

/// The audit chain for offline verification, as NDJSON: each event in its canonical form (secret
/// stored forms replaced by their SHA-256, personal data sealed) with its hashes, and each signed
/// checkpoint after the event it covers. The head is signed before the export starts, so the
/// export ends with a checkpoint (platform admins, `audit:read` tokens).
#[utoipa::path(
    operation_id = "export_chain",
    tag = "audit",
    security(("session" = []), ("api_token" = ["audit:read"])),
    responses(
        (status = 200, description = "`{\"kind\":\"event\",...}` and `{\"kind\":\"checkpoint\",...}` lines", content_type = "application/x-ndjson"),
        (status = 403, description = "auditor_required, admin_required, insufficient_scope", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/audit/chain")]
#[tracing::instrument(skip_all)]
pub async fn export(
    state: web::Data<AppState>,
    who: Authenticated,
) -> Result<HttpResponse, AppError> {
    state.app.audit.require_auditor(&who).await?;
    let through = audit_chain::sign_head(&state.pool, &state.signing_key).await?;
    let pages = stream::unfold(
        (state.into_inner(), 0_i64, false),
        move |(state, after, done)| async move {
            if done || after >= through {
                return None;
            }
            match audit_chain::export_page(&state.pool, after, through, EXPORT_PAGE).await {
                Ok(lines) => {
                    let mut last = after;
                    let mut chunk = Vec::new();
                    for line in &lines {
                        if let audit_chain::ExportLine::Event { n, .. } = line {
                            last = *n;
                        }
                        if let Ok(json) = serde_json::to_vec(line) {
                            chunk.extend_from_slice(&json);
                            chunk.push(b'\n');
                        }
                    }
                    if lines.is_empty() {
                        return None;
                    }
                    Some((
                        Ok::<Bytes, AppError>(Bytes::from(chunk)),
                        (state, last, false),
                    ))
                }
                Err(error) => Some((Err(error.into()), (state, after, true))),
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(pages))
}
