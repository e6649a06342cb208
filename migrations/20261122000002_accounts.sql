-- Email uniqueness is a set rule no single aggregate can enforce: a registration claims the
-- address here first (keyed by an HMAC of the normalized address, so no plaintext address is
-- stored) and releases it if the registration fails.
CREATE TABLE email_reservations
(
    email_hash text        PRIMARY KEY,
    account_id uuid        NOT NULL UNIQUE,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- Per-account data keys, sealed under the master key. Personal data in events is sealed with
-- these; destroying a key erases that data everywhere while the log stays intact.
CREATE TABLE account_keys
(
    account_id   uuid        PRIMARY KEY,
    sealed_key   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz
);

-- When a session was last used, for the idle timeout. Not a security fact worth an event per
-- request; written at most once a minute per session.
CREATE TABLE session_activity
(
    session_id   uuid        PRIMARY KEY,
    last_seen_at timestamptz NOT NULL
);
