-- Sessions that may only enrol a second factor (a workspace requires MFA and the account has
-- none). Every session recorded before this column existed was a full session, so the default
-- is what a rebuild from the log would write.
ALTER TABLE session_credentials_v1 ADD COLUMN enrolment_only boolean NOT NULL DEFAULT false;
