-- The commit notification names the connection that appended (its application_name, which each
-- Warden process makes its own) on a first line, then the event types. A process has already
-- woken its own readers when its commit returned, so it passes over its own notifications; other
-- processes wake the readers that consume one of the types. A payload without a first line (the
-- revocation barrier's empty one) wakes every reader, as before.
CREATE OR REPLACE FUNCTION notify_events_appended() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('warden_events',
                      coalesce(current_setting('application_name', true), '') || E'\n' ||
                      (SELECT coalesce(string_agg(DISTINCT event_type, ' '), '') FROM appended));
    RETURN NULL;
END;
$$;
