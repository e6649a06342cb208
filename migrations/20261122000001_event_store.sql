-- The event store. The first seven columns are postgres-es's; it names the columns it inserts,
-- so the two added below are filled by their defaults.
--   global_position: a total order of insertion, unique.
--   transaction_id:  the writing transaction. Readers go in (transaction_id, global_position)
--                    order and only below pg_snapshot_xmin(pg_current_snapshot()), so a
--                    transaction that commits late can never be skipped (docs/adr/0001).
CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         jsonb                        NOT NULL,
    metadata        jsonb                        NOT NULL,
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_commit_order ON events (transaction_id, global_position);

-- Wakes projectors as soon as a writing transaction commits (notifications are delivered at
-- commit, and repeated ones within a transaction are folded into one).
CREATE FUNCTION notify_events_appended() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('warden_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_appended
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events_appended();

-- Snapshots are a cache of an aggregate's state at a sequence, written after the events they
-- cover have committed. A snapshot whose schema_version is not the code's is ignored.
CREATE TABLE aggregate_snapshots
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    schema_version integer     NOT NULL,
    last_sequence  bigint      NOT NULL,
    payload        jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- One row per projector: how far it has applied the log, moved in the same transaction as the
-- projector's view writes.
CREATE TABLE projector_checkpoints
(
    name            text        PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
