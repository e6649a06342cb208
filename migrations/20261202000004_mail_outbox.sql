-- The mail outbox's deliveries (docs/adr/0018): which message was claimed, sent or given up on,
-- by its Message-ID. Never the text of a message: that is derived again from the log.
CREATE TABLE mail_deliveries (
    message_id    text PRIMARY KEY,
    account_id    uuid NOT NULL,
    kind          text NOT NULL,
    claimed_until timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    finished_at   timestamptz,
    -- sent, refused (the mail server will never take it), no address (erased since)
    outcome       text
);

CREATE INDEX mail_deliveries_unfinished ON mail_deliveries (claimed_until) WHERE finished_at IS NULL;
