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

-- The outbox mails what is decided from now on. A log written before it was mailed inline (and
-- had no notices): it is not mailed again, so its checkpoint starts at the newest event.
INSERT INTO projector_checkpoints (name, transaction_id, global_position)
SELECT 'mail_outbox', transaction_id, global_position FROM events
ORDER BY transaction_id DESC, global_position DESC
LIMIT 1
ON CONFLICT (name) DO NOTHING;
