use std::fmt;
use std::str::FromStr;

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// Opens the transaction in which views apply a batch and move their checkpoints, in the same
/// round trip as its `BEGIN`: it commits without waiting for its WAL to reach the disk. A crash
/// can lose such a commit only whole, rows and checkpoint together, and the view then applies
/// the same events again from the log, which is durable; nothing is decided from a view that
/// has not caught up (docs/adr/0023).
pub(crate) async fn begin_view_transaction(
    pool: &PgPool,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin_with("BEGIN; SET LOCAL synchronous_commit TO OFF")
        .await
}

/// A place in the log's commit order: `(transaction_id, global_position)`. Comparing two cursors
/// compares those pairs, which is the order every projector reads in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub transaction_id: u64,
    pub global_position: i64,
}

impl Cursor {
    /// Everything written by transactions older than `xmin` (all of which have ended).
    pub fn horizon(xmin: u64) -> Self {
        Self {
            transaction_id: xmin,
            global_position: 0,
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.transaction_id, self.global_position)
    }
}

impl FromStr for Cursor {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tx, pos) = s.split_once('.').ok_or(())?;
        Ok(Self {
            transaction_id: tx.parse().map_err(|_| ())?,
            global_position: pos.parse().map_err(|_| ())?,
        })
    }
}

pub(crate) fn parse_xid8(text: &str) -> Result<u64, sqlx::Error> {
    text.parse()
        .map_err(|_| sqlx::Error::Decode(format!("not an xid8: {text}").into()))
}

/// Locks the projector's checkpoint row for the rest of the transaction, so that one projector
/// runs in one place at a time across every Warden process, and returns where it stands.
pub(crate) async fn lock(conn: &mut PgConnection, name: &str) -> Result<Cursor, sqlx::Error> {
    Ok(read(conn, name, "FOR UPDATE").await?.0)
}

/// Like `lock`, with the horizon (`pg_snapshot_xmin`) read in the same statement: every event
/// below it is in a transaction that has ended, so a pass that reads after it may move there.
pub(crate) async fn lock_with_horizon(
    conn: &mut PgConnection,
    name: &str,
) -> Result<(Cursor, u64), sqlx::Error> {
    read(conn, name, "FOR UPDATE").await
}

/// Where a reader stands, without locking (reactors may run in two places at once).
pub(crate) async fn current(pool: &sqlx::PgPool, name: &str) -> Result<Cursor, sqlx::Error> {
    Ok(read(&mut *pool.acquire().await?, name, "").await?.0)
}

/// Like `current`, with the horizon read in the same statement, on `conn`.
pub(crate) async fn current_with_horizon(
    conn: &mut PgConnection,
    name: &str,
) -> Result<(Cursor, u64), sqlx::Error> {
    read(conn, name, "").await
}

/// The checkpoint row of `name` (made at the start of the log if there is none: only then does
/// the read cost a second statement) and the horizon its statement saw.
async fn read(
    conn: &mut PgConnection,
    name: &str,
    lock: &str,
) -> Result<(Cursor, u64), sqlx::Error> {
    let select = format!(
        "SELECT transaction_id::text, global_position,
                pg_snapshot_xmin(pg_current_snapshot())::text
         FROM projector_checkpoints WHERE name = $1 {lock}"
    );
    let found: Option<(String, i64, String)> = sqlx::query_as(&select)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    let (tx, pos, xmin) = match found {
        Some(row) => row,
        None => {
            sqlx::query(
                "INSERT INTO projector_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .bind(name)
            .execute(&mut *conn)
            .await?;
            sqlx::query_as(&select)
                .bind(name)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    let at = Cursor {
        transaction_id: parse_xid8(&tx)?,
        global_position: pos,
    };
    Ok((at, parse_xid8(&xmin)?))
}

pub(crate) async fn advance(
    conn: &mut PgConnection,
    name: &str,
    to: Cursor,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector_checkpoints
         SET transaction_id = $2::text::xid8, global_position = $3, updated_at = now(),
             last_error = NULL
         WHERE name = $1",
    )
    .bind(name)
    .bind(to.transaction_id.to_string())
    .bind(to.global_position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records `error` as the last error of every one of `names`.
pub(crate) async fn record_error(
    pool: &sqlx::PgPool,
    names: &[&str],
    error: &str,
) -> Result<(), sqlx::Error> {
    // An upsert: the failed pass may have been the one that would have created the row.
    sqlx::query(
        "INSERT INTO projector_checkpoints (name, last_error) SELECT unnest($1::text[]), $2
         ON CONFLICT (name) DO UPDATE SET last_error = EXCLUDED.last_error",
    )
    .bind(names)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Moves the checkpoint of every one of `names` to `to`, unless it is there or further already.
pub(crate) async fn advance_past<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    names: &[&str],
    to: Cursor,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector_checkpoints
         SET transaction_id = $2::text::xid8, global_position = $3, updated_at = now(),
             last_error = NULL
         WHERE name = ANY($1) AND (transaction_id, global_position) < ($2::text::xid8, $3)",
    )
    .bind(names)
    .bind(to.transaction_id.to_string())
    .bind(to.global_position)
    .execute(executor)
    .await?;
    Ok(())
}
