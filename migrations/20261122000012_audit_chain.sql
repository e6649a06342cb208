-- Tamper evidence: every event, in commit order, hashed and chained. `n` counts events from 1
-- without gaps; `chain_hash` = SHA-256(previous chain_hash || event_hash), from 32 zero bytes.
CREATE TABLE audit_chain_v1
(
    transaction_id  xid8   NOT NULL,
    global_position bigint NOT NULL,
    n               bigint NOT NULL UNIQUE,
    event_hash      bytea  NOT NULL,
    chain_hash      bytea  NOT NULL,
    PRIMARY KEY (transaction_id, global_position)
);

-- Signed statements "the chain's first `events` events end in `chain_hash` at `position`".
-- Written every N events by the chain's projector and every few seconds by a ticker, so the
-- head is never long unsigned. Not a view: replay leaves it alone.
CREATE TABLE audit_checkpoints
(
    events          bigint      PRIMARY KEY,
    transaction_id  xid8        NOT NULL,
    global_position bigint      NOT NULL,
    chain_hash      bytea       NOT NULL,
    signed_at       timestamptz NOT NULL,
    key_id          text        NOT NULL,
    signature       bytea       NOT NULL
);
