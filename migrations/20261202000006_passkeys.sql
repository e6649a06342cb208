-- Passwordless passkey sign-ins (docs/adr/0021): the ceremony's state from the request options
-- until its answer, by the SHA-256 of its challenge. Before the answer nobody is known, so the
-- state cannot be kept with an account as registration and second-factor ceremonies are. Sealed;
-- taken (deleted) by the one answer that uses it.
CREATE TABLE passkey_sign_ins (
    challenge_hash text PRIMARY KEY,
    state          text NOT NULL,
    expires_at     timestamptz NOT NULL
);

CREATE INDEX passkey_sign_ins_expiry ON passkey_sign_ins (expires_at);
