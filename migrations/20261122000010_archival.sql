-- archival_schedule projector: each workspace's retention and its last acknowledged purge. The
-- dates of the next purge are computed from these when read.
CREATE TABLE archival_schedule_v1
(
    workspace_id  uuid PRIMARY KEY,
    days          integer,
    since         timestamptz NOT NULL,
    last_purge_at timestamptz,
    last_cutoff   timestamptz,
    last_counts   jsonb
);
