//! Reads of the credentials views (`views::credentials`): sessions, API tokens, reset tokens and
//! login challenges by the hash of what the client presents; and the activity tables that record
//! when a session or token was last used.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// When a session stops, whatever ends it first: an event, its absolute lifetime, or idleness.
/// The one rule for "is this session live", used by authentication, introspection and the
/// sessions list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionLifetime {
    pub expires_at: DateTime<Utc>,
    pub idle_timeout_secs: i64,
    pub last_seen_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// Why a session that no event ended stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimedOut {
    Idle,
    Expired,
}

impl TimedOut {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Idle => "idle_timeout",
            Self::Expired => "expired",
        }
    }
}

impl SessionLifetime {
    /// When the session times out unless an event ends it sooner, and why.
    pub fn times_out_at(&self) -> (DateTime<Utc>, TimedOut) {
        let idle_end = self.last_seen_at + Duration::seconds(self.idle_timeout_secs);
        if idle_end < self.expires_at {
            (idle_end, TimedOut::Idle)
        } else {
            (self.expires_at, TimedOut::Expired)
        }
    }

    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && now < self.times_out_at().0
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionCredential {
    pub session_id: Uuid,
    pub account_id: Uuid,
    pub enrollment_only: bool,
    pub pin_unlocked_until: Option<DateTime<Utc>>,
    /// How the session was authenticated (from the session history).
    pub method: Option<String>,
    #[sqlx(flatten)]
    pub lifetime: SessionLifetime,
}

pub async fn session_by_token(
    pool: &PgPool,
    token_hash: &str,
) -> Result<Option<SessionCredential>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.session_id, c.account_id, c.expires_at, c.idle_timeout_secs, c.ended_at,
                c.enrolment_only AS enrollment_only, c.pin_unlocked_until,
                COALESCE(a.last_seen_at, c.started_at) AS last_seen_at, h.method
         FROM session_credentials_v1 c
         LEFT JOIN session_activity a ON a.session_id = c.session_id
         LEFT JOIN session_history_v1 h ON h.session_id = c.session_id
         WHERE c.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await
}

/// A session or API token committed but not yet applied to the credentials view (which waits for
/// the horizon: a long transaction anywhere on the server holds it back).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BeyondTheView {
    pub account_id: String,
    /// The session's or token's id.
    pub id: Option<String>,
    /// A session's idle timeout.
    pub idle_timeout_secs: Option<i64>,
    /// When the session was last seen or the token last used, by any process (activity is
    /// written beside the log, not through it).
    pub last_active_at: Option<DateTime<Utc>>,
}

/// Where the activity of the credentials of one kind is kept.
struct Activity {
    table: &'static str,
    id: &'static str,
    at: &'static str,
}

/// The credential whose hash is `token_hash` among the events of `event_type` (`variant` is its
/// payload's tag, `id_field` the field naming it, `hash_field` the one holding the hash) beyond
/// the credentials view's checkpoint.
async fn beyond_the_view(
    pool: &PgPool,
    (event_type, variant): (&str, &str),
    id_field: &str,
    hash_field: &str,
    token_hash: &str,
    activity: Option<Activity>,
) -> Result<Option<BeyondTheView>, sqlx::Error> {
    let last_active = match activity {
        Some(Activity { table, id, at }) => {
            format!("(SELECT a.{at} FROM {table} a WHERE a.{id}::text = e.payload -> $2 ->> $3)")
        }
        None => "NULL::timestamptz".to_owned(),
    };
    let query = format!(
        "SELECT e.aggregate_id AS account_id, e.payload -> $2 ->> $3 AS id,
                (e.payload -> $2 ->> 'idle_timeout_secs')::bigint AS idle_timeout_secs,
                {last_active} AS last_active_at
         FROM events e
         LEFT JOIN projector_checkpoints c ON c.name = 'credentials_v1'
         WHERE e.transaction_id >= COALESCE(c.transaction_id, '0'::xid8)
           AND (e.transaction_id, e.global_position)
               > (COALESCE(c.transaction_id, '0'::xid8), COALESCE(c.global_position, 0))
           AND e.aggregate_type = 'account'
           AND e.event_type = $1
           AND e.payload -> $2 ->> $4 = $5
         LIMIT 1"
    );
    sqlx::query_as(&query)
        .bind(event_type)
        .bind(variant)
        .bind(id_field)
        .bind(hash_field)
        .bind(token_hash)
        .fetch_optional(pool)
        .await
}

/// A session started in events the credentials view has not applied yet.
pub async fn session_beyond_the_view(
    pool: &PgPool,
    token_hash: &str,
) -> Result<Option<BeyondTheView>, sqlx::Error> {
    let started = ("account.session.started", "SessionStarted");
    let activity = Some(Activity {
        table: "session_activity",
        id: "session_id",
        at: "last_seen_at",
    });
    beyond_the_view(
        pool,
        started,
        "session_id",
        "token_hash",
        token_hash,
        activity,
    )
    .await
}

/// An API token created in events the credentials view has not applied yet.
pub async fn api_token_beyond_the_view(
    pool: &PgPool,
    token_hash: &str,
) -> Result<Option<BeyondTheView>, sqlx::Error> {
    let created = ("account.api_token.created", "ApiTokenCreated");
    let activity = Some(Activity {
        table: "token_activity",
        id: "token_id",
        at: "last_used_at",
    });
    beyond_the_view(
        pool,
        created,
        "token_id",
        "token_hash",
        token_hash,
        activity,
    )
    .await
}

/// Records that a session was seen at `now` (never moving the time back).
pub async fn touch_session(
    pool: &PgPool,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO session_activity (session_id, last_seen_at) VALUES ($1, $2)
         ON CONFLICT (session_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
         WHERE session_activity.last_seen_at < EXCLUDED.last_seen_at",
    )
    .bind(session_id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiTokenRecord {
    pub token_id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub expiry_recorded: bool,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiTokenRecord {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && !self.is_expired(now)
    }
}

const TOKEN_COLUMNS: &str = "t.token_id, t.account_id, t.name, t.scopes, t.created_at,
    t.expires_at, t.expiry_recorded, t.revoked_at, a.last_used_at";

pub async fn api_token_by_hash(
    pool: &PgPool,
    token_hash: &str,
) -> Result<Option<ApiTokenRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens_v1 t
         LEFT JOIN token_activity a ON a.token_id = t.token_id
         WHERE t.token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(pool)
    .await
}

/// The account's unrevoked tokens, newest first.
pub async fn api_tokens_of(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Vec<ApiTokenRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens_v1 t
         LEFT JOIN token_activity a ON a.token_id = t.token_id
         WHERE t.account_id = $1 AND t.revoked_at IS NULL
         ORDER BY t.created_at DESC, t.token_id DESC"
    ))
    .bind(account_id)
    .fetch_all(pool)
    .await
}

/// Records that a token was used at `now` (never moving the time back).
pub async fn touch_api_token(
    pool: &PgPool,
    token_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO token_activity (token_id, last_used_at) VALUES ($1, $2)
         ON CONFLICT (token_id) DO UPDATE SET last_used_at = EXCLUDED.last_used_at
         WHERE token_activity.last_used_at < EXCLUDED.last_used_at",
    )
    .bind(token_id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// The account a password reset token was mailed to (from the view, or the events beyond it).
pub async fn reset_token_account(
    pool: &PgPool,
    token_hash: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let found = sqlx::query_scalar("SELECT account_id FROM reset_tokens_v1 WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(pool)
        .await?;
    if found.is_some() {
        return Ok(found);
    }
    let requested = ("account.password_reset.requested", "PasswordResetRequested");
    let beyond = beyond_the_view(pool, requested, "at", "token_hash", token_hash, None).await?;
    Ok(beyond.and_then(|b| b.account_id.parse().ok()))
}

/// The account a login challenge belongs to (from the view, or the events beyond it).
pub async fn challenge_account(
    pool: &PgPool,
    challenge_hash: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let found =
        sqlx::query_scalar("SELECT account_id FROM mfa_challenges_v1 WHERE challenge_hash = $1")
            .bind(challenge_hash)
            .fetch_optional(pool)
            .await?;
    if found.is_some() {
        return Ok(found);
    }
    let issued = ("account.mfa.challenge_issued", "MfaChallengeIssued");
    let beyond =
        beyond_the_view(pool, issued, "at", "challenge_hash", challenge_hash, None).await?;
    Ok(beyond.and_then(|b| b.account_id.parse().ok()))
}
