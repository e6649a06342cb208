//! "Is this credential live, and whose is it": answered from this process's cache, or built
//! from the aggregates (never from a view that may lag behind a revocation) and then cached.
//! The views only say which account a token hash belongs to, which never changes.

pub mod activity;
pub mod cache;
pub mod follower;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::account::{Account, AuthMethod, LiveSession};
use warden_aggregates::shared::{AccountId, WorkspaceId};
use warden_aggregates::workspace::Role;
use warden_projections::queries::credentials::{self as views, SessionLifetime};
use warden_projections::queries::workspaces;

use self::activity::{Activity, Seen, RESOLUTION_SECS};
use self::cache::{CachedCredential, CredentialCache, Facts, SessionFacts, TokenFacts};
use super::accounts::Profile;
use super::command::Commands;
use super::directory::Directory;
use super::error::AppError;

/// A workspace the account belongs to, as its aggregate says now.
#[derive(Debug, Clone)]
pub struct Membership {
    id: Uuid,
    role: Role,
    mfa_required_since: Option<DateTime<Utc>>,
}

impl Membership {
    pub fn new(id: WorkspaceId, role: Role, mfa_required_since: Option<DateTime<Utc>>) -> Self {
        Self {
            id: id.0,
            role,
            mfa_required_since,
        }
    }

    pub fn workspace_id(&self) -> WorkspaceId {
        WorkspaceId(self.id)
    }

    pub fn role(&self) -> Role {
        self.role
    }
}

#[derive(Clone)]
pub struct Credentials {
    cache: Arc<CredentialCache>,
    commands: Commands,
    directory: Directory,
    activity: Activity,
    pool: PgPool,
}

impl Credentials {
    pub fn new(
        cache: Arc<CredentialCache>,
        commands: Commands,
        directory: Directory,
        activity: Activity,
        pool: PgPool,
    ) -> Self {
        Self {
            cache,
            commands,
            directory,
            activity,
            pool,
        }
    }

    pub fn cache(&self) -> &Arc<CredentialCache> {
        &self.cache
    }

    /// The live session whose token hashes to `hash`.
    pub async fn session(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<CachedCredential>>, AppError> {
        if let Some(entry) = self.cache.get(hash) {
            if let Facts::Session(facts) = &entry.facts {
                if session_is_live(facts, now) {
                    return Ok(Some(entry));
                }
            }
        }
        // Not cached, or idle as far as this process knows: another process may have seen it.
        self.fill_session(hash, now).await
    }

    /// The unrevoked API token whose secret hashes to `hash` (it may have expired).
    pub async fn api_token(&self, hash: &str) -> Result<Option<Arc<CachedCredential>>, AppError> {
        if let Some(entry) = self.cache.get(hash) {
            if matches!(entry.facts, Facts::ApiToken(_)) {
                return Ok(Some(entry));
            }
        }
        self.fill_api_token(hash).await
    }

    /// Notes that the session was used at `now`; written behind, once per resolution.
    pub fn seen(&self, entry: &CachedCredential, now: DateTime<Utc>) {
        let at = now.timestamp();
        match &entry.facts {
            Facts::Session(facts) => {
                facts.last_seen.fetch_max(at, Ordering::AcqRel);
                if due(&facts.last_written, at) {
                    self.activity.note(Seen::Session(facts.session_id.0, now));
                }
            }
            Facts::ApiToken(facts) => {
                if due(&facts.last_written, at) {
                    self.activity.note(Seen::ApiToken(facts.token_id.0, now));
                }
            }
        }
    }

    async fn fill_session(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<CachedCredential>>, AppError> {
        let epoch = self.cache.epoch();
        let known = self.cache.located(hash);
        let located = match known.as_deref().and_then(LocatedSession::of) {
            Some(located) => Some(located),
            None => self.locate_session(hash).await?,
        };
        let Some(row) = located else {
            return Ok(None);
        };
        let account_id = AccountId(row.account_id);
        let account = self.commands.load_account(account_id).await?;
        let Some(live) = account
            .sessions()
            .find(|(id, s)| id.0 == row.session_id && s.token_hash.0 == hash)
            .map(|(_, s)| s.clone())
        else {
            return Ok(None);
        };
        let last_seen_here = self.activity.unwritten(row.session_id);
        let lifetime = SessionLifetime {
            expires_at: live.expires_at,
            idle_timeout_secs: row.idle_timeout_secs,
            last_seen_at: row
                .last_seen_at
                .unwrap_or(live.started_at)
                .max(last_seen_here.unwrap_or_default()),
            ended_at: None,
        };
        let memberships = self.memberships_of(known.as_deref(), account_id).await?;
        if !lifetime.is_live(now) || ended_by_policy(&live, &memberships) {
            return Ok(None);
        }
        let facts = Facts::Session(SessionFacts {
            session_id: warden_aggregates::shared::SessionId(row.session_id),
            started_at: live.started_at,
            expires_at: live.expires_at,
            idle_timeout_secs: lifetime.idle_timeout_secs,
            mfa_passed: live.method != AuthMethod::Password,
            pin_unlocked_until: live.pin_unlocked_until,
            last_seen: lifetime.last_seen_at.timestamp().into(),
            last_written: lifetime.last_seen_at.timestamp().into(),
        });
        let entry = self
            .entry(
                &account,
                account_id,
                live.enrollment_only,
                facts,
                memberships,
            )
            .await?;
        self.cache.insert(hash.to_owned(), entry.clone(), epoch);
        Ok(Some(entry))
    }

    async fn fill_api_token(&self, hash: &str) -> Result<Option<Arc<CachedCredential>>, AppError> {
        let epoch = self.cache.epoch();
        let known = self.cache.located(hash);
        let located = match known.as_deref().and_then(located_token) {
            Some(located) => Some(located),
            None => self.locate_api_token(hash).await?,
        };
        let Some((account_id, token_id, last_used_at)) = located else {
            return Ok(None);
        };
        let account_id = AccountId(account_id);
        let account = self.commands.load_account(account_id).await?;
        let Some((token_id, token)) = account
            .api_tokens()
            .find(|(id, _)| id.0 == token_id)
            .map(|(id, t)| (*id, t.clone()))
        else {
            return Ok(None);
        };
        let memberships = self.memberships_of(known.as_deref(), account_id).await?;
        let facts = Facts::ApiToken(TokenFacts {
            token_id,
            scopes: token.scopes,
            expires_at: token.expires_at,
            expiry_recorded: token.expiry_recorded,
            first_use_pending: (!token.first_used).into(),
            last_written: last_used_at.map_or(0, |t| t.timestamp()).into(),
        });
        let entry = self
            .entry(&account, account_id, false, facts, memberships)
            .await?;
        self.cache.insert(hash.to_owned(), entry.clone(), epoch);
        Ok(Some(entry))
    }

    /// The account's workspaces: those of the entry its account's change dropped (no workspace
    /// has changed since, or it would have been forgotten), else as their aggregates say now.
    async fn memberships_of(
        &self,
        known: Option<&CachedCredential>,
        account_id: AccountId,
    ) -> Result<Vec<Membership>, AppError> {
        match known {
            Some(entry) if entry.account_id == account_id.0 => Ok(entry.memberships.clone()),
            _ => memberships(&self.commands, &self.pool, account_id).await,
        }
    }

    /// Where the session `hash` names is recorded: the credentials view, or (while the view
    /// waits for the horizon) the events beyond it. The aggregate then decides.
    async fn locate_session(&self, hash: &str) -> Result<Option<LocatedSession>, AppError> {
        if let Some(row) = views::session_by_token(&self.pool, hash).await? {
            return Ok(Some(LocatedSession {
                account_id: row.account_id,
                session_id: row.session_id,
                idle_timeout_secs: row.lifetime.idle_timeout_secs,
                last_seen_at: Some(row.lifetime.last_seen_at),
            }));
        }
        let Some(found) = views::session_beyond_the_view(&self.pool, hash).await? else {
            return Ok(None);
        };
        let parse = |text: Option<&str>| text.and_then(|t| t.parse::<Uuid>().ok());
        let (Ok(account_id), Some(session_id), Some(idle_timeout_secs)) = (
            found.account_id.parse(),
            parse(found.id.as_deref()),
            found.idle_timeout_secs,
        ) else {
            return Ok(None);
        };
        Ok(Some(LocatedSession {
            account_id,
            session_id,
            idle_timeout_secs,
            last_seen_at: found.last_active_at,
        }))
    }

    /// The account, id and last use of the API token `hash` names, from the view or the events
    /// beyond it.
    async fn locate_api_token(
        &self,
        hash: &str,
    ) -> Result<Option<(Uuid, Uuid, Option<DateTime<Utc>>)>, AppError> {
        if let Some(row) = views::api_token_by_hash(&self.pool, hash).await? {
            return Ok(Some((row.account_id, row.token_id, row.last_used_at)));
        }
        let Some(found) = views::api_token_beyond_the_view(&self.pool, hash).await? else {
            return Ok(None);
        };
        let token_id = found.id.as_deref().and_then(|t| t.parse().ok());
        Ok(match (found.account_id.parse(), token_id) {
            (Ok(account_id), Some(token_id)) => Some((account_id, token_id, found.last_active_at)),
            _ => None,
        })
    }

    async fn entry(
        &self,
        account: &Account,
        account_id: AccountId,
        enrollment_only: bool,
        facts: Facts,
        memberships: Vec<Membership>,
    ) -> Result<Arc<CachedCredential>, AppError> {
        let key = self.directory.key(account_id).await?;
        let required_by = requiring_mfa(&memberships);
        let profile = Profile::of(account, account_id, key.as_ref(), required_by);
        Ok(Arc::new(CachedCredential {
            account_id: account_id.0,
            enrollment_only,
            facts,
            memberships,
            profile: Arc::new(profile),
        }))
    }
}

/// A session found by its token's hash, before the aggregate confirms it.
struct LocatedSession {
    account_id: Uuid,
    session_id: Uuid,
    idle_timeout_secs: i64,
    /// As the activity table has it; `None` for a session the view has not applied yet.
    last_seen_at: Option<DateTime<Utc>>,
}

impl LocatedSession {
    /// Where a dropped entry's session is: its account and id never change, its idle timeout
    /// was fixed when it started, and its last use is the latest this process knew of.
    fn of(entry: &CachedCredential) -> Option<Self> {
        let Facts::Session(facts) = &entry.facts else {
            return None;
        };
        Some(Self {
            account_id: entry.account_id,
            session_id: facts.session_id.0,
            idle_timeout_secs: facts.idle_timeout_secs,
            last_seen_at: DateTime::from_timestamp(facts.last_seen.load(Ordering::Acquire), 0),
        })
    }
}

/// The account, id and last recorded use of a dropped entry's API token.
fn located_token(entry: &CachedCredential) -> Option<(Uuid, Uuid, Option<DateTime<Utc>>)> {
    let Facts::ApiToken(facts) = &entry.facts else {
        return None;
    };
    let written = DateTime::from_timestamp(facts.last_written.load(Ordering::Acquire), 0)
        .filter(|t| t.timestamp() > 0);
    Some((entry.account_id, facts.token_id.0, written))
}

/// The account's workspaces as their aggregates say now. The membership view may lag: the
/// workspaces it names, and those that events beyond it name, are each read from the log.
pub async fn memberships(
    commands: &Commands,
    pool: &PgPool,
    account_id: AccountId,
) -> Result<Vec<Membership>, AppError> {
    let mut ids: BTreeSet<Uuid> = workspaces::memberships(pool, account_id.0)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.extend(workspaces::joined_beyond_the_view(pool, account_id.0).await?);
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let workspace = commands.load_workspace(WorkspaceId(id)).await?;
        if let Some(role) = workspace.role_of(account_id) {
            found.push(Membership {
                id,
                role,
                mfa_required_since: workspace
                    .mfa_required_since
                    .filter(|_| workspace.mfa_required),
            });
        }
    }
    Ok(found)
}

/// The account's workspaces whose policy requires MFA, as their aggregates say now.
pub async fn workspaces_requiring_mfa(
    commands: &Commands,
    pool: &PgPool,
    account_id: AccountId,
) -> Result<Vec<WorkspaceId>, AppError> {
    Ok(requiring_mfa(
        &memberships(commands, pool, account_id).await?,
    ))
}

fn requiring_mfa(memberships: &[Membership]) -> Vec<WorkspaceId> {
    memberships
        .iter()
        .filter(|m| m.mfa_required_since.is_some())
        .map(|m| WorkspaceId(m.id))
        .collect()
}

/// Whether `last_written` is a resolution old; if so it is moved to `now` by this caller only.
fn due(last_written: &std::sync::atomic::AtomicI64, now: i64) -> bool {
    let last = last_written.load(Ordering::Acquire);
    now - last >= RESOLUTION_SECS
        && last_written
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
}

fn session_is_live(facts: &SessionFacts, now: DateTime<Utc>) -> bool {
    let last_seen = DateTime::from_timestamp(facts.last_seen.load(Ordering::Acquire), 0)
        .unwrap_or(facts.started_at);
    SessionLifetime {
        expires_at: facts.expires_at,
        idle_timeout_secs: facts.idle_timeout_secs,
        last_seen_at: last_seen,
        ended_at: None,
    }
    .is_live(now)
}

/// A workspace policy requiring MFA ends the password-only sessions started by the time it was
/// turned on. The sweep records that as events; until it has, the check applies the same rule.
fn ended_by_policy(session: &LiveSession, memberships: &[Membership]) -> bool {
    session.method == AuthMethod::Password
        && !session.enrollment_only
        && memberships
            .iter()
            .filter_map(|m| m.mfa_required_since)
            .any(|since| session.started_at <= since)
}
