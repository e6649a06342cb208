-- Single sign-on through OpenID Connect providers.

-- Which account an identity at a provider belongs to: a set constraint no aggregate can hold,
-- claimed before the account's `identity.linked` event like an email reservation. The subject is
-- kept as an HMAC under a key derived from the master key.
CREATE TABLE identity_links (
    provider_id  uuid        NOT NULL,
    subject_hash text        NOT NULL,
    account_id   uuid        NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider_id, subject_hash)
);
CREATE INDEX identity_links_account ON identity_links (account_id);

-- A sign-in attempt between `GET /v1/sso/{id}/start` and the provider's callback. Only hashes:
-- the state's and the browser cookie's. The nonce and the PKCE verifier are derived again from
-- the state under a key derived from the master key, so nothing here opens anything.
CREATE TABLE sso_attempts (
    state_hash      text        PRIMARY KEY,
    provider_id     uuid        NOT NULL,
    browser_hash    text        NOT NULL,
    return_to       text        NOT NULL,
    -- Set when a signed-in owner links the provider from their settings: the account, and the
    -- hash of the link code its `identity.link_started` event waits for.
    link_account_id uuid,
    link_hash       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz
);
CREATE INDEX sso_attempts_expiry ON sso_attempts (expires_at);

-- The one-time login code a finished sign-in hands the frontend (60 seconds, single use). The
-- session token is derived again from the code at the exchange, so it is never stored.
CREATE TABLE sso_login_codes (
    code_hash  text        PRIMARY KEY,
    account_id uuid        NOT NULL,
    session_id uuid        NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX sso_login_codes_expiry ON sso_login_codes (expires_at);

-- Which accounts signed in during a provider's session (`sid`), for the provider's back-channel
-- logout that names only the session.
CREATE TABLE sso_provider_sessions (
    provider_id  uuid        NOT NULL,
    sid_hash     text        NOT NULL,
    account_id   uuid        NOT NULL,
    signed_in_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider_id, sid_hash, account_id)
);
