-- Warden's event store announces its commits itself, after they return and many at once
-- (docs/adr/0025): a NOTIFY in the appending transaction serializes every such commit on one
-- lock through its WAL flush. Its appends set `warden.announce` to 'off' for their transaction;
-- any other writer of the log is still announced here, as before.
CREATE OR REPLACE FUNCTION notify_events_appended() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF current_setting('warden.announce', true) IS DISTINCT FROM 'off' THEN
        PERFORM pg_notify('warden_events',
                          coalesce(current_setting('application_name', true), '') || E'\n' ||
                          (SELECT coalesce(string_agg(DISTINCT event_type, ' '), '') FROM appended));
    END IF;
    RETURN NULL;
END;
$$;
