-- access_requests projector: unblock requests for support, with their decisions. The reason
-- stays sealed under the account's data key.
CREATE TABLE access_requests_v1
(
    request_id   uuid PRIMARY KEY,
    account_id   uuid        NOT NULL,
    reason       text        NOT NULL,
    requested_at timestamptz NOT NULL,
    status       text        NOT NULL,
    decided_at   timestamptz,
    decided_by   uuid
);
CREATE INDEX access_requests_v1_status ON access_requests_v1 (status, requested_at);
