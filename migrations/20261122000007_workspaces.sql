-- workspaces projector: each workspace and its members, for the API and for login decisions
-- ("does any workspace of this account require MFA?").
CREATE TABLE workspaces_v1
(
    workspace_id uuid PRIMARY KEY,
    name         text        NOT NULL,
    mfa_required boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL
);

CREATE TABLE workspace_members_v1
(
    workspace_id uuid        NOT NULL,
    account_id   uuid        NOT NULL,
    role         text        NOT NULL,
    since        timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, account_id)
);
CREATE INDEX workspace_members_v1_account ON workspace_members_v1 (account_id);
