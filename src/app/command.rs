//! The one path every command takes: load the aggregate, handle the command, append its events
//! (re-running it against fresh state after a lost race), count the outcome, and wait for the
//! views its events affect. Refusals come back typed, so a use case can tell one from another
//! before they become problems.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use warden_aggregates::account::{
    Account, AccountError, AccountEvent, AccountServices, Outcome, PasswordVerifier,
};
use warden_aggregates::identity_provider::{IdentityProvider, IdentityProviderServices};
use warden_aggregates::shared::{AccountId, Clock, PasswordHash, WorkspaceId};
use warden_aggregates::workspace::{Workspace, WorkspaceServices};
use warden_projections::{Cursor, Projections};

use super::context::{caller_metadata, Authenticated, RequestContext};
use super::error::{AppError, Refusal};
use super::problem::ProblemCode;
use crate::adapters::barrier;
use crate::adapters::keys::KeyRing;
use crate::adapters::store::{Committed, EventStore, ExecuteError, Snapshotted};
use crate::app::credentials::cache::{Changes, CredentialCache};
use crate::metrics::Metrics;

/// How long a state-changing request waits for the views it affects (read-your-writes).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// A process that neither confirms a revocation nor loses its lease within this long is
/// reported: the revocation answers 503 `revocation_pending`.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(barrier::LEASE.as_secs() + 2);

/// What the caller is told when the views do not catch up in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// No wait: a fact recorded in passing that nobody reads back at once.
    No,
    /// The answer goes out anyway; the views follow shortly.
    Views,
    /// A revocation: the caller is told it is in force only once every Warden process has
    /// applied it (the revocation barrier); the views are then waited for like `Views`.
    Revocation,
    /// An attempt answered like an unknown address when it fails: the views are waited for
    /// only when it opened a session or a challenge, so that a recorded failure takes no longer
    /// to answer than an address without an account.
    UnlessFailed,
}

/// Whether events of `types` record only a failed attempt (no session, no challenge).
fn only_failures(types: &[String]) -> bool {
    const FAILURES: [&str; 2] = [
        AccountEvent::PASSWORD_CHECK_FAILED,
        AccountEvent::LOCKED_OUT,
    ];
    types.iter().all(|t| FAILURES.contains(&t.as_str()))
}

/// A command that did not commit: refused by the aggregate, or failed on the way.
#[derive(Debug)]
pub enum CommandError<E> {
    /// `at`: when it was refused, for a lock's `Retry-After`.
    Refused {
        refusal: E,
        at: chrono::DateTime<chrono::Utc>,
    },
    Failed(AppError),
}

/// An aggregate commands are sent to, with the services its `handle` needs.
pub trait Target: Snapshotted {
    fn services(commands: &Commands) -> Self::Services;
}

impl Target for Account {
    fn services(commands: &Commands) -> AccountServices {
        // Retries after a lost race re-run the command; the argon2 verdict for an unchanged
        // hash is remembered so a retry costs milliseconds, not another verification.
        let base = &commands.account_services;
        AccountServices {
            clock: base.clock.clone(),
            passwords: Arc::new(RememberedVerdicts::new(base.passwords.clone())),
            totp: base.totp.clone(),
            policy: base.policy.clone(),
        }
    }
}

impl Target for IdentityProvider {
    fn services(commands: &Commands) -> IdentityProviderServices {
        IdentityProviderServices {
            clock: commands.clock.clone(),
        }
    }
}

impl Target for Workspace {
    fn services(commands: &Commands) -> WorkspaceServices {
        WorkspaceServices {
            clock: commands.clock.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Commands {
    store: EventStore,
    account_services: Arc<AccountServices>,
    clock: Arc<dyn Clock>,
    projections: Arc<Projections>,
    metrics: Metrics,
    keys: KeyRing,
    revocation_barrier: bool,
    /// This process's credential cache: a commit drops what it makes stale before the call
    /// returns, so the next request here never answers from older state (the follower does the
    /// same for every process, a moment later).
    credential_cache: Arc<CredentialCache>,
}

/// What a command is built with besides its store and services.
pub struct CommandDeps {
    pub projections: Arc<Projections>,
    pub metrics: Metrics,
    pub keys: KeyRing,
    pub revocation_barrier: bool,
    pub credential_cache: Arc<CredentialCache>,
}

impl Commands {
    pub fn new(
        store: EventStore,
        account_services: Arc<AccountServices>,
        deps: CommandDeps,
    ) -> Self {
        let CommandDeps {
            projections,
            metrics,
            keys,
            revocation_barrier,
            credential_cache,
        } = deps;
        Self {
            revocation_barrier,
            credential_cache,
            clock: account_services.clock.clone(),
            store,
            account_services,
            projections,
            metrics,
            keys,
        }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Runs `command` on aggregate `id`; see [`Settle`].
    pub async fn run<A: Target>(
        &self,
        id: &str,
        command: impl Fn() -> A::Command,
        metadata: &HashMap<String, String>,
        settle: Settle,
    ) -> Result<Committed<A>, CommandError<A::Error>> {
        let services = A::services(self);
        let result = self
            .store
            .execute::<A>(id, command, &services, metadata)
            .await;
        let outcome = match &result {
            Ok(_) => "committed",
            Err(ExecuteError::Domain(_)) => "refused",
            Err(ExecuteError::Store(_)) => "failed",
        };
        self.metrics.command(A::TYPE, outcome);
        let committed = result.map_err(|error| match error {
            ExecuteError::Domain(refusal) => CommandError::Refused {
                refusal,
                at: self.clock.now(),
            },
            ExecuteError::Store(error) => CommandError::Failed(error.into()),
        })?;
        self.forget_what_changed(id, &committed);
        self.settle(&committed, settle)
            .await
            .map_err(CommandError::Failed)?;
        Ok(committed)
    }

    pub async fn account(
        &self,
        id: AccountId,
        command: impl Fn() -> warden_aggregates::account::AccountCommand,
        metadata: &HashMap<String, String>,
        settle: Settle,
    ) -> Result<Committed<Account>, CommandError<warden_aggregates::account::AccountError>> {
        self.run::<Account>(&id.to_string(), command, metadata, settle)
            .await
    }

    pub async fn workspace(
        &self,
        id: WorkspaceId,
        command: impl Fn() -> warden_aggregates::workspace::WorkspaceCommand,
        metadata: &HashMap<String, String>,
        settle: Settle,
    ) -> Result<Committed<Workspace>, CommandError<warden_aggregates::workspace::WorkspaceError>>
    {
        self.run::<Workspace>(&id.to_string(), command, metadata, settle)
            .await
    }

    /// Runs `command` on `target` on behalf of `who`, the request metadata sealed under the
    /// caller's key.
    pub async fn by(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        target: AccountId,
        command: impl Fn() -> warden_aggregates::account::AccountCommand,
        settle: Settle,
    ) -> Result<Committed<Account>, AppError> {
        let metadata = self.metadata_for(who, ctx).await?;
        Ok(self.account(target, command, &metadata, settle).await?)
    }

    /// Runs a command on the caller's own account. A check it records as failed (a wrong
    /// password, code or PIN) answers `refused`; otherwise the outcome says what happened.
    pub async fn own<C: Into<warden_aggregates::account::AccountCommand>>(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        command: impl Fn() -> C,
        settle: Settle,
        refused: ProblemCode,
    ) -> Result<Outcome, AppError> {
        let command = || command().into();
        let committed = self.by(who, ctx, who.account_id, command, settle).await?;
        match Outcome::of(&committed.events) {
            Outcome::Refused(_) => Err(AppError::new(refused)),
            outcome => Ok(outcome),
        }
    }

    pub async fn metadata_for(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<HashMap<String, String>, AppError> {
        let key = self.keys.get(who.account_id.0).await?;
        Ok(caller_metadata(who, ctx, key.as_ref()))
    }

    /// The account as of its latest event.
    pub async fn load_account(&self, id: AccountId) -> Result<Account, AppError> {
        let (account, _) = self.store.load::<Account>(&id.to_string()).await?;
        Ok(account)
    }

    pub async fn load_workspace(&self, id: WorkspaceId) -> Result<Workspace, AppError> {
        let (workspace, _) = self.store.load::<Workspace>(&id.to_string()).await?;
        Ok(workspace)
    }

    /// The caller, if it is a platform administrator (and, for a token, has the `admin` scope).
    pub async fn require_admin(&self, who: &Authenticated) -> Result<(), AppError> {
        who.require(warden_aggregates::shared::Scope::Admin)?;
        if self.load_account(who.account_id).await?.is_admin() {
            Ok(())
        } else {
            Err(AppError::new(ProblemCode::AdminRequired))
        }
    }

    /// Drops this process's cached credentials that the committed events make stale.
    fn forget_what_changed<A: cqrs_es::Aggregate>(&self, id: &str, committed: &Committed<A>) {
        if committed.position.is_none() {
            return;
        }
        let mut changes = Changes::default();
        for event in &committed.events {
            changes.note(A::TYPE, id, &cqrs_es::DomainEvent::event_type(event));
        }
        self.credential_cache.apply(&changes);
    }

    /// A revocation first waits until every Warden process has applied it to its credential
    /// cache (or lost its lease); then, like any change, for the views its events affect. A
    /// view that lags delays the answer but never stops it: the credential check does not read
    /// the views' verdicts.
    async fn settle<A: cqrs_es::Aggregate>(
        &self,
        committed: &Committed<A>,
        settle: Settle,
    ) -> Result<(), AppError> {
        let Some(position) = committed.position else {
            return Ok(());
        };
        let types: Vec<String> = committed
            .events
            .iter()
            .map(cqrs_es::DomainEvent::event_type)
            .collect();
        let named: Vec<&str> = types.iter().map(String::as_str).collect();
        self.projections.wake_for(&named);
        if settle == Settle::Revocation && self.revocation_barrier {
            self.revocation_in_force().await?;
        }
        if settle == Settle::No || (settle == Settle::UnlessFailed && only_failures(&types)) {
            return Ok(());
        }
        let held_before = self.projections.held_waits();
        let reached = self
            .projections
            .wait_for_views_of(position, Some(&types), SETTLE_TIMEOUT)
            .await;
        if reached {
            return Ok(());
        }
        if self.projections.held_waits() > held_before {
            // Counted in /metrics; one line per request would drown the log.
            tracing::debug!(%position, "a long transaction holds the horizon: answered before the views");
        } else {
            tracing::warn!(%position, "views did not catch up in time");
        }
        Ok(())
    }

    /// The revocation barrier (docs/adr/0015).
    async fn revocation_in_force(&self) -> Result<(), AppError> {
        let started = std::time::Instant::now();
        let pool = self.store.pool();
        let generation = barrier::next_generation(pool).await?;
        let left = barrier::wait(pool, generation, BARRIER_TIMEOUT).await?;
        let waited = started.elapsed().as_secs_f64();
        if left.is_empty() {
            self.metrics.barrier("confirmed", waited);
            return Ok(());
        }
        self.metrics.barrier("unconfirmed", waited);
        tracing::warn!(generation, processes = ?left, "revocation not confirmed by every process");
        Err(AppError::new(ProblemCode::RevocationPending))
    }

    /// Position of the newest event, for tests and benchmarks that wait on views.
    pub async fn head(&self) -> Result<Option<Cursor>, AppError> {
        Ok(self.store.head().await?)
    }
}

impl CommandError<AccountError> {
    /// Refusals that must not tell an account from none — it vanished (never registered, or
    /// erased) between the lookup of a credential and its command, or it is locked and the
    /// password was wrong: answered as `code`, exactly as a credential that names nothing.
    pub fn as_unknown(self, code: ProblemCode) -> AppError {
        match self {
            Self::Refused {
                refusal:
                    AccountError::NotRegistered
                    | AccountError::Erased
                    | AccountError::WrongPasswordWhileLocked
                    | AccountError::NoPassword,
                ..
            } => AppError::new(code),
            other => other.into(),
        }
    }
}

impl<E: Refusal> From<CommandError<E>> for AppError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Refused { refusal, at } => refusal.to_problem(at),
            CommandError::Failed(error) => error,
        }
    }
}

/// Remembers verification verdicts for the duration of one command execution.
struct RememberedVerdicts {
    inner: Arc<dyn PasswordVerifier>,
    verdicts: std::sync::Mutex<Vec<(PasswordHash, bool)>>,
}

impl RememberedVerdicts {
    fn new(inner: Arc<dyn PasswordVerifier>) -> Self {
        Self {
            inner,
            verdicts: std::sync::Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl PasswordVerifier for RememberedVerdicts {
    // One command checks one candidate, so the hash alone identifies a verdict.
    async fn verify(&self, hash: &PasswordHash, candidate: &SecretString) -> bool {
        let known = self
            .verdicts
            .lock()
            .ok()
            .and_then(|v| v.iter().find(|(h, _)| h == hash).map(|(_, ok)| *ok));
        if let Some(verdict) = known {
            return verdict;
        }
        let verdict = self.inner.verify(hash, candidate).await;
        if let Ok(mut verdicts) = self.verdicts.lock() {
            verdicts.push((hash.clone(), verdict));
        }
        verdict
    }
}
