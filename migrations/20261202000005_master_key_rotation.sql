-- Master key rotation (docs/adr/0020). The server key, from which Warden derives its indexes and
-- code hashes and under which it seals secrets inside events, is kept here sealed under the
-- master key, so a new master key re-seals this row instead of changing what was derived.
CREATE TABLE server_keys (
    name        text PRIMARY KEY,
    sealed_key  text NOT NULL,
    -- The id of the master key that sealed it (never the key).
    sealed_by   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    resealed_at timestamptz
);

-- Which master key sealed each data key; NULL for keys sealed before ids were kept.
ALTER TABLE account_keys ADD COLUMN sealed_by text;
CREATE INDEX account_keys_sealed_by ON account_keys (sealed_by) WHERE sealed_key IS NOT NULL;
