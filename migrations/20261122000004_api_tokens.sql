-- credentials projector: API access tokens by hash, for bearer authentication and the list.
CREATE TABLE api_tokens_v1
(
    token_hash       text PRIMARY KEY,
    token_id         uuid        NOT NULL UNIQUE,
    account_id       uuid        NOT NULL,
    name             text        NOT NULL,
    scopes           text[]      NOT NULL,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz,
    first_used_at    timestamptz,
    expiry_recorded  boolean     NOT NULL DEFAULT false,
    revoked_at       timestamptz
);
CREATE INDEX api_tokens_v1_account ON api_tokens_v1 (account_id, created_at DESC);

-- When a token was last used; written at most once a minute per token, like session_activity.
CREATE TABLE token_activity
(
    token_id     uuid        PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);

-- The requests each token was allowed in the last minute (a sliding-window log of at most
-- `limit` entries), shared by every Warden process; see docs/adr/0005.
CREATE TABLE token_rate_windows
(
    token_id           uuid          PRIMARY KEY,
    accepted           timestamptz[] NOT NULL DEFAULT '{}',
    last_recorded_at   timestamptz
);

-- Takes one request slot for a token in a single round trip. Allowed while fewer than `p_limit`
-- requests were accepted in the last `p_window`; the row lock makes the count exact across
-- processes. A refusal asks to be recorded at most once a minute (`record_refusal`).
CREATE FUNCTION take_rate_slot(p_token uuid, p_now timestamptz, p_limit integer,
                               p_window interval)
    RETURNS TABLE (allowed boolean, remaining integer, oldest timestamptz,
                   record_refusal boolean)
    LANGUAGE plpgsql AS
$$
DECLARE
    kept     timestamptz[];
    last_rec timestamptz;
    rec      boolean;
BEGIN
    INSERT INTO token_rate_windows (token_id) VALUES (p_token) ON CONFLICT (token_id) DO NOTHING;
    SELECT w.accepted, w.last_recorded_at INTO kept, last_rec
    FROM token_rate_windows w WHERE w.token_id = p_token FOR UPDATE;
    kept := ARRAY(SELECT t FROM unnest(kept) AS t WHERE t > p_now - p_window ORDER BY t);
    IF cardinality(kept) < p_limit THEN
        kept := kept || p_now;
        UPDATE token_rate_windows SET accepted = kept WHERE token_id = p_token;
        RETURN QUERY SELECT true, p_limit - cardinality(kept), kept[1], false;
    ELSE
        rec := last_rec IS NULL OR last_rec <= p_now - interval '1 minute';
        UPDATE token_rate_windows
        SET accepted = kept,
            last_recorded_at = CASE WHEN rec THEN p_now ELSE last_recorded_at END
        WHERE token_id = p_token;
        RETURN QUERY SELECT false, 0, kept[1], rec;
    END IF;
END;
$$;
