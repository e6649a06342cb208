//! Reads of the workspace views (`views::workspaces`).

use sqlx::PgPool;
use uuid::Uuid;

/// The account's workspaces and its role in each.
pub async fn memberships(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT workspace_id, role FROM workspace_members_v1 WHERE account_id = $1
         ORDER BY workspace_id",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await
}

/// Workspaces that added `account_id` in events the membership view has not applied yet.
pub async fn joined_beyond_the_view(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT e.aggregate_id
         FROM events e
         LEFT JOIN projector_checkpoints c ON c.name = 'workspaces_v1'
         WHERE e.aggregate_type = 'workspace'
           AND e.transaction_id >= COALESCE(c.transaction_id, '0'::xid8)
           AND (e.transaction_id, e.global_position)
               > (COALESCE(c.transaction_id, '0'::xid8), COALESCE(c.global_position, 0))
           AND e.event_type = 'workspace.member.added'
           AND e.payload -> 'MemberAdded' ->> 'account_id' = $1",
    )
    .bind(account_id.to_string())
    .fetch_all(pool)
    .await?;
    Ok(ids.iter().filter_map(|id| id.parse().ok()).collect())
}
