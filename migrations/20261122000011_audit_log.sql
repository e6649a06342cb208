-- audit_log projector: one entry per security-relevant event, in commit order. IP address and
-- user agent stay sealed (opened for authorized readers); the rest is queryable.
CREATE TABLE audit_log_v1
(
    transaction_id  xid8        NOT NULL,
    global_position bigint      NOT NULL,
    at              timestamptz NOT NULL,
    action          text        NOT NULL,
    outcome         text        NOT NULL,
    reason          text,
    actor           text        NOT NULL,
    subject         uuid,
    workspace_id    uuid,
    method          text,
    ip              text,
    user_agent      text,
    request_id      text,
    PRIMARY KEY (transaction_id, global_position)
);
CREATE INDEX audit_log_v1_subject ON audit_log_v1 (subject, transaction_id, global_position);
CREATE INDEX audit_log_v1_workspace ON audit_log_v1 (workspace_id, transaction_id, global_position);
CREATE INDEX audit_log_v1_actor ON audit_log_v1 (actor, transaction_id, global_position);
