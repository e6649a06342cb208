//! Replay for auditors: every projection rebuilt from the log alone into fresh tables, then
//! compared with the live ones row for row.
//!
//! The fresh tables live in a schema of their own, made `LIKE` the live ones; the projectors
//! write through a connection whose `search_path` puts that schema first, so the same code that
//! maintains the live views builds the copies. Both sides are brought to the same position in
//! the log before they are compared.

use std::sync::Arc;

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::runtime::checkpoint::{self, Cursor};
use crate::runtime::progress::{Progress, Silent};
use crate::runtime::projector::{ProjectionError, Projector};
use crate::runtime::rebuild::rebuild_together;
use crate::runtime::runner::catch_up;

/// How one view compared.
#[derive(Debug, Clone, Serialize)]
pub struct TableDiff {
    pub projector: &'static str,
    pub table: &'static str,
    pub live_rows: i64,
    pub rebuilt_rows: i64,
    /// Rows in the live view that the rebuild does not have (counting duplicates).
    pub only_live: i64,
    /// Rows the rebuild has that the live view does not.
    pub only_rebuilt: i64,
}

impl TableDiff {
    pub fn identical(&self) -> bool {
        self.only_live == 0 && self.only_rebuilt == 0
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub identical: bool,
    /// The log position both sides were compared at.
    pub position: String,
    pub tables: Vec<TableDiff>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the live views and the rebuild did not meet at one position: {0}")]
    Moving(String),
}

const SCHEMA: &str = "warden_replay";

async fn execute(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(conn).await.map(|_| ())
}

/// Rebuilds every view of `projectors` from the log and compares it with the live one.
/// `options` connect to the same database as `live`.
pub async fn replay(
    live: &PgPool,
    options: PgConnectOptions,
    projectors: &[Arc<dyn Projector>],
) -> Result<ReplayReport, ReplayError> {
    replay_reporting(live, options, projectors, &Silent).await
}

/// `replay`, telling `progress` how far each projector's rebuild has come.
pub async fn replay_reporting(
    live: &PgPool,
    options: PgConnectOptions,
    projectors: &[Arc<dyn Projector>],
    progress: &dyn Progress,
) -> Result<ReplayReport, ReplayError> {
    let mut conn = PgConnection::connect_with(&options).await?;
    // One replay at a time per database: they share the scratch schema. The lock goes with
    // this connection.
    execute(
        &mut conn,
        "SELECT pg_advisory_lock(hashtext('warden_replay'))",
    )
    .await?;
    execute(
        &mut conn,
        &format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"),
    )
    .await?;
    execute(&mut conn, &format!("CREATE SCHEMA {SCHEMA}")).await?;
    let tables: Vec<&str> = std::iter::once("projector_checkpoints")
        .chain(projectors.iter().flat_map(|p| p.tables().iter().copied()))
        .collect();
    scratch_tables(&mut conn, &tables).await?;
    let rebuilt = PgPoolOptions::new()
        .max_connections(u32::try_from(projectors.len() + 1).unwrap_or(u32::MAX))
        .connect_with(options.options([("search_path", &format!("{SCHEMA},public"))]))
        .await?;

    let result = compare_when_level(live, &rebuilt, projectors, &mut conn, progress).await;
    rebuilt.close().await;
    execute(
        &mut conn,
        &format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"),
    )
    .await?;
    result
}

/// The scratch copies of `tables`: unlogged (a replay that dies is started again from nothing,
/// so its writes need no WAL), and with only their unique indexes. Views find the rows they
/// change by a unique key; the other indexes serve readers, and the comparison reads every row.
async fn scratch_tables(conn: &mut PgConnection, tables: &[&str]) -> Result<(), sqlx::Error> {
    for table in tables {
        execute(
            conn,
            &format!("CREATE UNLOGGED TABLE {SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)"),
        )
        .await?;
    }
    let readers_only: Vec<String> = sqlx::query_scalar(
        "SELECT i.indexrelid::regclass::text FROM pg_index i
         JOIN pg_class t ON t.oid = i.indrelid
         WHERE t.relnamespace = $1::regnamespace AND NOT i.indisunique",
    )
    .bind(SCHEMA)
    .fetch_all(&mut *conn)
    .await?;
    for index in readers_only {
        execute(conn, &format!("DROP INDEX {index}")).await?;
    }
    Ok(())
}

async fn compare_when_level(
    live: &PgPool,
    rebuilt: &PgPool,
    projectors: &[Arc<dyn Projector>],
    conn: &mut PgConnection,
    progress: &dyn Progress,
) -> Result<ReplayReport, ReplayError> {
    let mut tables = Vec::new();
    let mut position = Cursor::default();
    let newest: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(live)
        .await?;
    let stages: Vec<String> = projectors
        .iter()
        .map(|p| format!("replay {}", p.name()))
        .collect();
    let total = u64::try_from(newest).unwrap_or_default();
    rebuild_together(rebuilt, projectors, progress, &stages, total).await?;
    for projector in projectors {
        // Catch both up until they stand at the same place: another Warden process may be
        // moving the live side meanwhile.
        let mut level = None;
        for _ in 0..20 {
            catch_up(rebuilt, projector.as_ref()).await?;
            catch_up(live, projector.as_ref()).await?;
            let live_at = stored_checkpoint(live, projector.name()).await?;
            let rebuilt_at = stored_checkpoint(rebuilt, projector.name()).await?;
            if same_events_seen(live, projector.as_ref(), live_at, rebuilt_at).await? {
                level = Some(live_at.max(rebuilt_at));
                break;
            }
        }
        let at = level.ok_or_else(|| ReplayError::Moving(projector.name().to_string()))?;
        position = position.max(at);
        for table in projector.tables() {
            tables.push(compare(conn, projector.name(), table).await?);
        }
    }
    Ok(ReplayReport {
        identical: tables.iter().all(TableDiff::identical),
        position: position.to_string(),
        tables,
    })
}

/// Whether two checkpoints of `projector` have seen the same events: no event it consumes lies
/// between them. (The shared reader moves a view's checkpoint to the last event of the pass, a
/// view reading alone to the last of its own types: equal views, different places.)
async fn same_events_seen(
    pool: &PgPool,
    projector: &dyn Projector,
    a: Cursor,
    b: Cursor,
) -> Result<bool, sqlx::Error> {
    if a == b {
        return Ok(true);
    }
    let (from, to) = (a.min(b), a.max(b));
    let types: Vec<String> = projector
        .event_types()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let between: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events
             WHERE ($1 OR event_type = ANY($2))
               AND (transaction_id, global_position) > ($3::text::xid8, $4)
               AND (transaction_id, global_position) <= ($5::text::xid8, $6))",
    )
    .bind(projector.reads_every_event())
    .bind(types)
    .bind(from.transaction_id.to_string())
    .bind(from.global_position)
    .bind(to.transaction_id.to_string())
    .bind(to.global_position)
    .fetch_one(pool)
    .await?;
    Ok(!between)
}

async fn stored_checkpoint(pool: &PgPool, name: &str) -> Result<Cursor, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let at = checkpoint::lock(&mut tx, name).await?;
    tx.commit().await?;
    Ok(at)
}

async fn compare(
    conn: &mut PgConnection,
    projector: &'static str,
    table: &'static str,
) -> Result<TableDiff, sqlx::Error> {
    let count = |schema: &str| format!("SELECT count(*) FROM {schema}.{table}");
    let live_rows: i64 = sqlx::query_scalar(&count("public"))
        .fetch_one(&mut *conn)
        .await?;
    let rebuilt_rows: i64 = sqlx::query_scalar(&count(SCHEMA))
        .fetch_one(&mut *conn)
        .await?;
    let only = |a: &str, b: &str| {
        format!(
            "SELECT count(*) FROM (SELECT * FROM {a}.{table} EXCEPT ALL SELECT * FROM {b}.{table}) d"
        )
    };
    let only_live: i64 = sqlx::query_scalar(&only("public", SCHEMA))
        .fetch_one(&mut *conn)
        .await?;
    let only_rebuilt: i64 = sqlx::query_scalar(&only(SCHEMA, "public"))
        .fetch_one(&mut *conn)
        .await?;
    Ok(TableDiff {
        projector,
        table,
        live_rows,
        rebuilt_rows,
        only_live,
        only_rebuilt,
    })
}
