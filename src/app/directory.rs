//! Who has which address: the email reservation (a set constraint no aggregate can hold), and
//! each account's data key for opening its personal data.

use sqlx::PgPool;
use uuid::Uuid;
use warden_aggregates::shared::{AccountId, Email, ProviderId};

use super::error::AppError;
use super::personal::Personal;
use crate::adapters::keys::KeyRing;
use crate::adapters::sealing::DataKey;
use crate::adapters::store::EventStore;

#[derive(Clone)]
pub struct Directory {
    pool: PgPool,
    keys: KeyRing,
    store: EventStore,
}

impl Directory {
    pub fn new(pool: PgPool, keys: KeyRing, store: EventStore) -> Self {
        Self { pool, keys, store }
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub async fn key(&self, account_id: AccountId) -> Result<Option<DataKey>, AppError> {
        self.keys.get(account_id.0).await
    }

    /// The account registered with `email`, if any.
    pub async fn account_id_for(&self, email: &Email) -> Result<Option<AccountId>, AppError> {
        let index = self.keys.master().email_index(email.as_str());
        let id: Option<Uuid> =
            sqlx::query_scalar("SELECT account_id FROM email_reservations WHERE email_hash = $1")
                .bind(index)
                .fetch_optional(&self.pool)
                .await?;
        Ok(id.map(AccountId))
    }

    /// The account of an address as typed (`None` for a malformed or unknown one).
    pub async fn find(&self, email: &str) -> Result<Option<AccountId>, AppError> {
        match Email::parse(email) {
            Ok(email) => self.account_id_for(&email).await,
            Err(_) => Ok(None),
        }
    }

    /// Claims `email` for `account_id`. A claim left behind by a registration that died before
    /// writing its first event is taken over after five minutes.
    pub async fn claim(&self, email: &Email, account_id: AccountId) -> Result<bool, AppError> {
        let index = self.keys.master().email_index(email.as_str());
        let inserted = sqlx::query(
            "INSERT INTO email_reservations (email_hash, account_id) VALUES ($1, $2)
             ON CONFLICT (email_hash) DO NOTHING",
        )
        .bind(&index)
        .bind(account_id.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(true);
        }
        let taken_over = sqlx::query(
            "UPDATE email_reservations r SET account_id = $2, claimed_at = now()
             WHERE r.email_hash = $1 AND r.claimed_at < now() - interval '5 minutes'
               AND NOT EXISTS (SELECT 1 FROM events e
                               WHERE e.aggregate_type = 'account'
                                 AND e.aggregate_id = r.account_id::text)",
        )
        .bind(&index)
        .bind(account_id.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken_over == 1)
    }

    /// Undoes what a registration that failed had claimed: its address and its data key.
    pub async fn abandon(&self, account_id: AccountId) {
        let _ = self.release(account_id).await;
        let _ = self.keys.discard(account_id.0).await;
    }

    /// Frees the account's address (a failed registration, an erasure).
    pub async fn release(&self, account_id: AccountId) -> Result<(), AppError> {
        sqlx::query("DELETE FROM email_reservations WHERE account_id = $1")
            .bind(account_id.0)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM identity_links WHERE account_id = $1")
            .bind(account_id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The account an identity at `provider` is linked to, if any.
    pub async fn account_with_identity(
        &self,
        provider: ProviderId,
        subject: &str,
    ) -> Result<Option<AccountId>, AppError> {
        let index = self
            .keys
            .master()
            .identity_index(&provider.to_string(), subject);
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT account_id FROM identity_links WHERE provider_id = $1 AND subject_hash = $2",
        )
        .bind(provider.0)
        .bind(index)
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(AccountId))
    }

    /// Claims an identity at `provider` for `account_id`; `false` when another account has it.
    pub async fn claim_identity(
        &self,
        provider: ProviderId,
        subject: &str,
        account_id: AccountId,
    ) -> Result<bool, AppError> {
        let index = self
            .keys
            .master()
            .identity_index(&provider.to_string(), subject);
        let owner: Uuid = sqlx::query_scalar(
            "INSERT INTO identity_links (provider_id, subject_hash, account_id) VALUES ($1, $2, $3)
             ON CONFLICT (provider_id, subject_hash) DO UPDATE SET provider_id = EXCLUDED.provider_id
             RETURNING account_id",
        )
        .bind(provider.0)
        .bind(index)
        .bind(account_id.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(owner == account_id.0)
    }

    /// Frees the identities at `provider` an account unlinked.
    pub async fn release_identities(
        &self,
        provider: ProviderId,
        account_id: AccountId,
    ) -> Result<(), AppError> {
        sqlx::query("DELETE FROM identity_links WHERE provider_id = $1 AND account_id = $2")
            .bind(provider.0)
            .bind(account_id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Frees one identity whose linking failed, if `account_id` holds it.
    pub async fn release_identity(
        &self,
        provider: ProviderId,
        subject: &str,
        account_id: AccountId,
    ) -> Result<(), AppError> {
        let index = self
            .keys
            .master()
            .identity_index(&provider.to_string(), subject);
        sqlx::query(
            "DELETE FROM identity_links
             WHERE provider_id = $1 AND subject_hash = $2 AND account_id = $3",
        )
        .bind(provider.0)
        .bind(index)
        .bind(account_id.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The account's address, opened with its key.
    pub async fn email_of(&self, account_id: AccountId) -> Result<Personal, AppError> {
        let (account, _) = self
            .store
            .load::<warden_aggregates::account::Account>(&account_id.to_string())
            .await?;
        let key = self.key(account_id).await?;
        Ok(match account.email() {
            Some(sealed) => Personal::open(key.as_ref(), sealed),
            None => Personal::Erased,
        })
    }
}
