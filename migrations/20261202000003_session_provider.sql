-- A session signed in through an identity provider shows which one, its issuer and what it
-- reported (`amr`, `acr`), as `account.session.started` recorded them.
ALTER TABLE session_history_v1 ADD COLUMN provider jsonb;
