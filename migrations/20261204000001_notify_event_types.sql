-- The commit notification names the event types the statement appended (space-separated), so a
-- process wakes only the readers that consume one of them. An empty payload (the revocation
-- barrier's) still wakes every reader.
CREATE OR REPLACE FUNCTION notify_events_appended() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('warden_events',
                      (SELECT coalesce(string_agg(DISTINCT event_type, ' '), '') FROM appended));
    RETURN NULL;
END;
$$;

DROP TRIGGER events_appended ON events;

CREATE TRIGGER events_appended
    AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION notify_events_appended();
