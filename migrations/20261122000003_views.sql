-- session_history projector: every session, current and ended, and failed password attempts.
-- Device, IP and user agent stay sealed under the account's data key.
CREATE TABLE session_history_v1
(
    session_id        uuid PRIMARY KEY,
    account_id        uuid        NOT NULL,
    device            text,
    ip                text,
    user_agent        text,
    method            text        NOT NULL,
    started_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    idle_timeout_secs bigint      NOT NULL,
    ended_at          timestamptz,
    end_reason        text
);
CREATE INDEX session_history_v1_account ON session_history_v1 (account_id, started_at DESC);

CREATE TABLE login_failures_v1
(
    global_position      bigint PRIMARY KEY,
    account_id           uuid        NOT NULL,
    purpose              text        NOT NULL,
    consecutive_failures integer     NOT NULL,
    ip                   text,
    user_agent           text,
    at                   timestamptz NOT NULL
);
CREATE INDEX login_failures_v1_account ON login_failures_v1 (account_id, at DESC);

-- credentials projector: what bearer authentication and reset confirmation look up.
CREATE TABLE session_credentials_v1
(
    token_hash        text PRIMARY KEY,
    session_id        uuid        NOT NULL UNIQUE,
    account_id        uuid        NOT NULL,
    started_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    idle_timeout_secs bigint      NOT NULL,
    ended_at          timestamptz
);

CREATE TABLE reset_tokens_v1
(
    token_hash text PRIMARY KEY,
    account_id uuid NOT NULL
);
