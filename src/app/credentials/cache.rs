//! The credentials this process has checked, by the hash of the token, with everything
//! authorization, introspection and `GET /v1/me` need. Never a source of truth: an entry is built
//! from the aggregates, dropped when the log shows its account or any workspace changed, and not
//! read at all while this process's lease is not trusted (docs/adr/0015).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use moka::notification::RemovalCause;
use uuid::Uuid;
use warden_aggregates::shared::{Scope, SessionId, TokenId};
use warden_aggregates::workspace::WorkspaceEvent;

use super::Membership;
use crate::adapters::barrier::Lease;
use crate::app::accounts::Profile;
use crate::app::context::{Authenticated, Credential};

/// How a cached session lives and what it passed.
#[derive(Debug)]
pub struct SessionFacts {
    pub session_id: SessionId,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub idle_timeout_secs: i64,
    pub mfa_passed: bool,
    pub pin_unlocked_until: Option<DateTime<Utc>>,
    /// Last request seen by this process or recorded when the entry was built (unix seconds).
    pub last_seen: AtomicI64,
    /// When this process last wrote `last_seen` down (unix seconds).
    pub last_written: AtomicI64,
}

#[derive(Debug)]
pub struct TokenFacts {
    pub token_id: TokenId,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub expiry_recorded: bool,
    /// Its first use is recorded as an event once; this process asks for it at most once.
    pub first_use_pending: AtomicBool,
    pub last_written: AtomicI64,
}

#[derive(Debug)]
pub enum Facts {
    Session(SessionFacts),
    ApiToken(TokenFacts),
}

/// A live credential as its aggregates said when the entry was built.
#[derive(Debug)]
pub struct CachedCredential {
    pub account_id: Uuid,
    pub enrollment_only: bool,
    pub facts: Facts,
    /// The account's workspaces as their aggregates said.
    pub memberships: Vec<Membership>,
    pub profile: Arc<Profile>,
}

impl CachedCredential {
    pub fn token(&self) -> Option<&TokenFacts> {
        match &self.facts {
            Facts::ApiToken(facts) => Some(facts),
            Facts::Session(_) => None,
        }
    }

    pub fn authenticated(self: &Arc<Self>) -> Authenticated {
        let credential = match &self.facts {
            Facts::Session(s) => Credential::Session(s.session_id),
            Facts::ApiToken(t) => Credential::ApiToken {
                token_id: t.token_id,
                scopes: t.scopes.clone(),
            },
        };
        Authenticated {
            account_id: warden_aggregates::shared::AccountId(self.account_id),
            credential,
            enrollment_only: self.enrollment_only,
            profile: Some(self.profile.clone()),
        }
    }

    /// A rough size in bytes, for the memory bound.
    fn weight(&self) -> usize {
        let profile = 256 + self.profile.mfa_required_by.len() * 16;
        let scopes = match &self.facts {
            Facts::ApiToken(t) => t.scopes.len() * 8,
            Facts::Session(_) => 0,
        };
        std::mem::size_of::<Self>()
            + profile
            + scopes
            + self.memberships.len() * std::mem::size_of::<Membership>()
            + 64
    }
}

/// What `/metrics` shows of the cache.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    pub entries: u64,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub invalidations: u64,
    pub clears: u64,
    pub trusted: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    pub max_entries: u64,
    pub max_bytes: u64,
}

/// Which keys each account holds, and when each account or the whole cache was last
/// invalidated: an entry built before one of those may not be stored.
#[derive(Default)]
struct Index {
    epoch: u64,
    cleared_at: u64,
    /// Invalidations before this epoch may have been forgotten.
    forgotten_before: u64,
    /// Per account: its keys, each with the epoch its entry was built from, and when the
    /// account was last invalidated.
    accounts: HashMap<Uuid, (HashMap<String, u64>, u64)>,
    /// When a workspace last changed: entries built before then are not kept as located.
    located_from: u64,
}

const FORGET_AFTER_EPOCHS: u64 = 10_000;

/// Workspace events that change a member's credentials: the cache is cleared for them.
const NARROWING_WORKSPACE_EVENTS: [&str; 4] = [
    WorkspaceEvent::MEMBER_ADDED,
    WorkspaceEvent::ROLE_CHANGED,
    WorkspaceEvent::MEMBER_REMOVED,
    WorkspaceEvent::MFA_POLICY_CHANGED,
];

/// What committed events change in the cache: the accounts whose entries go, whether everything
/// goes, and whether what dropped entries kept of their workspaces may be stale.
#[derive(Default)]
pub struct Changes {
    accounts: HashSet<Uuid>,
    clear: bool,
    workspaces_changed: bool,
}

impl Changes {
    pub fn note(&mut self, aggregate_type: &str, aggregate_id: &str, event_type: &str) {
        match aggregate_type {
            "account" => {
                if let Ok(id) = aggregate_id.parse::<Uuid>() {
                    self.accounts.insert(id);
                }
            }
            "workspace" => {
                self.clear |= NARROWING_WORKSPACE_EVENTS.contains(&event_type);
                self.workspaces_changed = true;
            }
            _ => {}
        }
    }
}

pub struct CredentialCache {
    entries: moka::sync::Cache<String, Arc<CachedCredential>>,
    /// Entries dropped because their account changed, kept for what did not change: whose
    /// credential the hash is, and the account's workspaces (forgotten with any workspace
    /// event). A rebuild reads the account itself again.
    located: moka::sync::Cache<String, Arc<CachedCredential>>,
    index: Mutex<Index>,
    lease: Lease,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: Arc<AtomicU64>,
    invalidations: AtomicU64,
    clears: AtomicU64,
    /// Answer from memory whatever the lease says: only when the barrier is off, in a debug
    /// build, to show what goes wrong without it.
    ignore_lease: bool,
}

impl CredentialCache {
    pub fn new(limits: CacheLimits, ignore_lease: bool) -> Self {
        let evictions = Arc::new(AtomicU64::new(0));
        let counted = evictions.clone();
        // Each entry weighs at least its share of the byte budget, so neither bound is passed.
        let floor = (limits.max_bytes / limits.max_entries.max(1)).max(1);
        let entries = moka::sync::Cache::builder()
            .max_capacity(limits.max_bytes.max(1))
            .weigher(move |_: &String, v: &Arc<CachedCredential>| {
                u32::try_from((v.weight() as u64).max(floor)).unwrap_or(u32::MAX)
            })
            .time_to_idle(std::time::Duration::from_secs(3600))
            .eviction_listener(move |_, _, cause| {
                if matches!(cause, RemovalCause::Size | RemovalCause::Expired) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Self {
            entries,
            located: moka::sync::Cache::builder()
                .max_capacity(limits.max_entries.max(1))
                .time_to_idle(std::time::Duration::from_secs(3600))
                .build(),
            index: Mutex::new(Index::default()),
            lease: Lease::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions,
            invalidations: AtomicU64::new(0),
            clears: AtomicU64::new(0),
            ignore_lease,
        }
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    fn trusted(&self) -> bool {
        self.ignore_lease || self.lease.is_trusted()
    }

    /// The entry for `key`, only while the lease is trusted.
    pub fn get(&self, key: &str) -> Option<Arc<CachedCredential>> {
        let found = if self.trusted() {
            self.entries.get(key)
        } else {
            None
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The entry dropped for `key` when its account last changed, only while the lease is
    /// trusted: its account, credential id and workspaces still hold; nothing else of it does.
    pub fn located(&self, key: &str) -> Option<Arc<CachedCredential>> {
        if self.trusted() {
            self.located.get(key)
        } else {
            None
        }
    }

    /// The epoch to hand back to [`Self::insert`] for an entry about to be built.
    pub fn epoch(&self) -> u64 {
        self.index.lock().map_or(u64::MAX, |i| i.epoch)
    }

    /// Stores an entry built from state read after `epoch` was taken, unless its account (or
    /// everything) was invalidated since, or the lease is not trusted.
    pub fn insert(&self, key: String, entry: Arc<CachedCredential>, epoch: u64) {
        let Ok(mut index) = self.index.lock() else {
            return;
        };
        let invalidated_at = index.accounts.get(&entry.account_id).map_or(0, |a| a.1);
        let stale = epoch < index.forgotten_before
            || epoch < index.cleared_at
            || epoch < invalidated_at
            || !self.trusted();
        if stale {
            return;
        }
        index
            .accounts
            .entry(entry.account_id)
            .or_default()
            .0
            .insert(key.clone(), epoch);
        self.located.invalidate(&key);
        self.entries.insert(key, entry);
    }

    /// Drops what `changes` makes stale.
    pub fn apply(&self, changes: &Changes) {
        if changes.clear {
            self.clear();
        } else {
            self.invalidate_accounts(&changes.accounts);
        }
        // After the accounts' entries were dropped: what they kept of their workspaces may be
        // older than these events.
        if changes.workspaces_changed {
            self.forget_locations();
        }
    }

    /// Drops every entry of these accounts.
    pub fn invalidate_accounts(&self, accounts: &HashSet<Uuid>) {
        if accounts.is_empty() {
            return;
        }
        let Ok(mut index) = self.index.lock() else {
            return;
        };
        index.epoch += 1;
        let epoch = index.epoch;
        let located_from = index.located_from;
        for account in accounts {
            let (keys, at) = index.accounts.entry(*account).or_default();
            *at = epoch;
            for (key, built) in keys.drain() {
                let dropped = self.entries.remove(&key);
                if let Some(dropped) = dropped.filter(|_| built >= located_from) {
                    self.located.insert(key, dropped);
                }
            }
        }
        self.invalidations
            .fetch_add(accounts.len() as u64, Ordering::Relaxed);
        Self::forget_old(&mut index);
    }

    /// Drops everything (a workspace changed, or the lease was lost).
    pub fn clear(&self) {
        let Ok(mut index) = self.index.lock() else {
            return;
        };
        index.epoch += 1;
        index.cleared_at = index.epoch;
        index.accounts.clear();
        index.forgotten_before = index.epoch;
        self.entries.invalidate_all();
        self.located.invalidate_all();
        self.clears.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets the dropped entries' workspaces, and keeps none of the entries built before now
    /// when they are dropped (a workspace changed).
    pub fn forget_locations(&self) {
        let Ok(mut index) = self.index.lock() else {
            return;
        };
        index.epoch += 1;
        index.located_from = index.epoch;
        self.located.invalidate_all();
    }

    /// Keeps the index from growing without bound: accounts with no entry left and an old
    /// invalidation are forgotten (an entry built before then is then refused anyway).
    fn forget_old(index: &mut Index) {
        if index.accounts.len() < 4 * 1024 || !index.epoch.is_multiple_of(1024) {
            return;
        }
        let floor = index.epoch.saturating_sub(FORGET_AFTER_EPOCHS);
        index
            .accounts
            .retain(|_, (keys, at)| !keys.is_empty() || *at >= floor);
        index.forgotten_before = index.forgotten_before.max(floor);
    }

    pub fn stats(&self) -> CacheStats {
        self.entries.run_pending_tasks();
        CacheStats {
            entries: self.entries.entry_count(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            clears: self.clears.load(Ordering::Relaxed),
            trusted: self.lease.is_trusted(),
        }
    }
}
