//! Per-account data keys (DESIGN.md §2): created with the account, sealed under the master key,
//! destroyed on erasure.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use crate::adapters::sealing::{DataKey, MasterKey};
use crate::app::AppError;

#[derive(Clone)]
pub struct KeyRing {
    pool: PgPool,
    master: Arc<MasterKey>,
}

impl KeyRing {
    pub fn new(pool: PgPool, master: Arc<MasterKey>) -> Self {
        Self { pool, master }
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    pub async fn create(&self, account_id: Uuid) -> Result<DataKey, AppError> {
        let (key, sealed) = self.master.new_data_key(&account_id.to_string());
        sqlx::query("INSERT INTO account_keys (account_id, sealed_key) VALUES ($1, $2)")
            .bind(account_id)
            .bind(sealed)
            .execute(&self.pool)
            .await?;
        Ok(key)
    }

    /// The account's key, or `None` once it has been destroyed (or never existed).
    pub async fn get(&self, account_id: Uuid) -> Result<Option<DataKey>, AppError> {
        let sealed: Option<Option<String>> =
            sqlx::query_scalar("SELECT sealed_key FROM account_keys WHERE account_id = $1")
                .bind(account_id)
                .fetch_optional(&self.pool)
                .await?;
        match sealed.flatten() {
            Some(sealed) => self
                .master
                .open_data_key(&account_id.to_string(), &sealed)
                .map(Some)
                .map_err(AppError::internal),
            None => Ok(None),
        }
    }

    /// The keys of several accounts in one query; an account without a live key maps to `None`.
    pub async fn get_many(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Option<DataKey>>, AppError> {
        let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as(
            "SELECT account_id, sealed_key FROM account_keys WHERE account_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut keys: HashMap<Uuid, Option<DataKey>> = ids.iter().map(|id| (*id, None)).collect();
        for (id, sealed) in rows {
            if let Some(sealed) = sealed {
                let key = self
                    .master
                    .open_data_key(&id.to_string(), &sealed)
                    .map_err(AppError::internal)?;
                keys.insert(id, Some(key));
            }
        }
        Ok(keys)
    }

    /// Crypto-shredding: the sealed key is gone, so every value sealed with it stays sealed.
    pub async fn destroy(&self, account_id: Uuid) -> Result<(), AppError> {
        sqlx::query(
            "UPDATE account_keys SET sealed_key = NULL, destroyed_at = COALESCE(destroyed_at, now())
             WHERE account_id = $1",
        )
        .bind(account_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn discard(&self, account_id: Uuid) -> Result<(), AppError> {
        sqlx::query("DELETE FROM account_keys WHERE account_id = $1")
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
