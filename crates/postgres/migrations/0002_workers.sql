-- runyard queue schema, version 2: the live workers (see
-- `runyard_queue::stored`). A row per registered worker; one whose
-- last_heartbeat is more than lease_us ago belongs to a worker that is gone.
CREATE TABLE runyard.workers (
    name           text    PRIMARY KEY,
    host           text    NOT NULL,
    pid            integer NOT NULL,
    started_at     bigint  NOT NULL,
    last_heartbeat bigint  NOT NULL,
    lease_us       bigint  NOT NULL
);
