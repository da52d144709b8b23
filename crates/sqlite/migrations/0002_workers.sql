-- runyard state file, schema version 2: the workers using the file (see
-- `runyard_queue::stored`). A row per registered worker; one whose
-- last_heartbeat is more than lease_us ago belongs to a worker that is gone.
-- Times are microseconds since the epoch.
CREATE TABLE runyard_workers (
    name           TEXT    PRIMARY KEY,
    host           TEXT    NOT NULL,
    pid            INTEGER NOT NULL,
    started_at     INTEGER NOT NULL,
    last_heartbeat INTEGER NOT NULL,
    lease_us       INTEGER NOT NULL
) WITHOUT ROWID;
