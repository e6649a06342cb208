//! Per-account data keys (DESIGN.md §2): created with the account, sealed under the master key,
//! destroyed on erasure. And the server key beside them, re-sealed with them when the master key
//! is rotated (docs/adr/0020).

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
        sqlx::query(
            "INSERT INTO account_keys (account_id, sealed_key, sealed_by) VALUES ($1, $2, $3)",
        )
        .bind(account_id)
        .bind(sealed)
        .bind(self.master.id())
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

/// The master key with the database's server key. The first process on a database keeps one:
/// a new random key on an empty log; on a log written before server keys were kept, what the
/// master key derived from until then, so nothing derived changes. A server key sealed by a key
/// that no longer seals is sealed again under the current one, after which a process that does
/// not know the current key refuses to start instead of failing on the accounts it sealed.
pub async fn with_server_key(pool: &PgPool, master: MasterKey) -> anyhow::Result<MasterKey> {
    loop {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT sealed_key, sealed_by FROM server_keys WHERE name = 'derivation'",
        )
        .fetch_optional(pool)
        .await?;
        let Some((sealed, sealed_by)) = row else {
            let history: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events)")
                .fetch_one(pool)
                .await?;
            let sealed = if history {
                master.own_derivations_as_server_key()
            } else {
                master.new_server_key()
            };
            sqlx::query(
                "INSERT INTO server_keys (name, sealed_key, sealed_by) VALUES ('derivation', $1, $2)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(sealed)
            .bind(master.id())
            .execute(pool)
            .await?;
            continue;
        };
        let known = master.ids().join(", ");
        let (master, _, resealed) = master.with_server_key(&sealed).map_err(|_| {
            anyhow::anyhow!(
                "the server key is sealed by master key {sealed_by}, which is not configured \
                 (this process knows {known}): add it to WARDEN_OTHER_MASTER_KEYS"
            )
        })?;
        if let Some(resealed) = resealed {
            sqlx::query(
                "UPDATE server_keys SET sealed_key = $1, sealed_by = $2, resealed_at = now()
                 WHERE name = 'derivation' AND sealed_key = $3",
            )
            .bind(resealed)
            .bind(master.id())
            .bind(&sealed)
            .execute(pool)
            .await?;
        }
        return Ok(master);
    }
}

/// What `warden keys rotate-master` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Resealed {
    /// The master key everything is sealed by now.
    pub sealed_by: String,
    /// Data keys sealed again, by the id of the key that had sealed them ("unknown" for keys
    /// sealed before ids were kept).
    pub data_keys: std::collections::BTreeMap<String, u64>,
    /// Data keys erased (or sealed again by another run) while this one read them: an erased
    /// key stays erased.
    pub changed_meanwhile: u64,
    /// Data keys no configured key opens (left as they are).
    pub unreadable: u64,
}

/// Seals every live data key that another key sealed again under the current master key, in
/// batches, while Warden serves. A key erased meanwhile stays erased: each row is replaced only
/// if it still holds what was read.
pub async fn reseal_all(pool: &PgPool, master: &MasterKey) -> anyhow::Result<Resealed> {
    let mut report = Resealed {
        sealed_by: master.id().to_string(),
        ..Resealed::default()
    };
    let mut after = Uuid::nil();
    loop {
        let rows: Vec<(Uuid, String, Option<String>)> = sqlx::query_as(
            "SELECT account_id, sealed_key, sealed_by FROM account_keys
             WHERE account_id > $1 AND sealed_key IS NOT NULL
               AND sealed_by IS DISTINCT FROM $2
             ORDER BY account_id LIMIT 500",
        )
        .bind(after)
        .bind(master.id())
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(report);
        };
        after = last.0;
        for (id, sealed, by) in rows {
            let Ok(resealed) = master.reseal_data_key(&id.to_string(), &sealed) else {
                report.unreadable += 1;
                continue;
            };
            let replaced = sqlx::query(
                "UPDATE account_keys SET sealed_key = $1, sealed_by = $2
                 WHERE account_id = $3 AND sealed_key = $4",
            )
            .bind(resealed)
            .bind(master.id())
            .bind(id)
            .bind(&sealed)
            .execute(pool)
            .await?
            .rows_affected();
            if replaced == 0 {
                report.changed_meanwhile += 1;
            } else {
                *report
                    .data_keys
                    .entry(by.unwrap_or_else(|| "unknown".into()))
                    .or_default() += 1;
            }
        }
    }
}

/// How many live data keys each master key sealed ("unknown": before ids were kept), and which
/// key seals the server key.
pub async fn sealed_by(pool: &PgPool) -> anyhow::Result<serde_json::Value> {
    let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT sealed_by, count(*) FROM account_keys WHERE sealed_key IS NOT NULL GROUP BY 1",
    )
    .fetch_all(pool)
    .await?;
    let server: Option<String> =
        sqlx::query_scalar("SELECT sealed_by FROM server_keys WHERE name = 'derivation'")
            .fetch_optional(pool)
            .await?;
    let data_keys: serde_json::Map<String, serde_json::Value> = rows
        .into_iter()
        .map(|(by, n)| (by.unwrap_or_else(|| "unknown".into()), n.into()))
        .collect();
    Ok(serde_json::json!({ "server_key": server, "data_keys": data_keys }))
}
