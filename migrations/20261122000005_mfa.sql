-- credentials projector: open login challenges by the hash of their token, for the second step.
CREATE TABLE mfa_challenges_v1
(
    challenge_hash text PRIMARY KEY,
    account_id     uuid        NOT NULL,
    expires_at     timestamptz NOT NULL
);
