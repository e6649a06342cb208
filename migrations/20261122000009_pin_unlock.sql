-- Until when a session's reporting history is unlocked by the PIN (introspection reports it).
-- No session was ever unlocked before this column existed, so NULL is what a rebuild would write.
ALTER TABLE session_credentials_v1 ADD COLUMN pin_unlocked_until timestamptz;
