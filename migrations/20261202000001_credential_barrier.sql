-- The revocation barrier (docs/adr/0015). Every running Warden process holds a row here: a lease
-- it renews while it follows the log, and the barrier generation its credential cache has
-- applied. A command that ends or narrows a credential takes the next generation after it
-- commits and returns once every process with a live lease has applied it (or lost its lease).
CREATE TABLE warden_processes
(
    process_id         uuid        PRIMARY KEY,
    started_at         timestamptz NOT NULL DEFAULT now(),
    lease_until        timestamptz NOT NULL,
    applied_generation bigint      NOT NULL DEFAULT 0,
    applied_at         timestamptz NOT NULL DEFAULT now(),
    host               text        NOT NULL DEFAULT ''
);

-- Taken (nextval) by a revoking command after its commit; read (last_value) by each follower
-- before it reads the log, so a follower that saw generation g has read every commit before g.
CREATE SEQUENCE warden_barrier_generation;
