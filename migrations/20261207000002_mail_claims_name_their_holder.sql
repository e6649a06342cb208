-- A mail claim names the process that holds it (its connections' application_name, which each
-- Warden process makes its own). A claim whose holder has no connection left on the server died
-- with its process: another process may take the message at once instead of waiting out the
-- claim (docs/adr/0018).
ALTER TABLE mail_deliveries ADD COLUMN claimed_by text;
