-- runyard queue schema, version 1. Every runyard table lives in its own
-- schema (`runyard` unless another is configured); times are microseconds
-- since the Unix epoch, as the workers' clocks read them.
CREATE TABLE runyard.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE runyard.jobs (
    id                 bigserial PRIMARY KEY,
    task               text     NOT NULL,
    params             text     NOT NULL,
    -- 0 waiting (queued, or scheduled while run_at is ahead), 2 running,
    -- 3 succeeded, 4 dead, 5 cancelled
    state              smallint NOT NULL,
    priority           integer  NOT NULL,
    run_at             bigint   NOT NULL,
    enqueued_at        bigint   NOT NULL,
    finished_at        bigint,
    -- attempts claimed so far: the fencing token of the current one
    attempt            integer  NOT NULL DEFAULT 0,
    max_attempts       integer  NOT NULL,
    attempts_per_round integer  NOT NULL,
    backoff            text     NOT NULL,
    timeout_us         bigint,
    mode               text     NOT NULL,
    isolate            boolean  NOT NULL,
    worker             text,
    lease_until        bigint,
    claimed_at         bigint,
    started            boolean  NOT NULL DEFAULT false,
    -- claims undone because their worker died before they were seen starting
    lost_claims        integer  NOT NULL DEFAULT 0,
    cancel_requested   boolean  NOT NULL DEFAULT false,
    idempotency_key    text,
    output             text
) WITH (fillfactor = 80);

-- Few, narrow and partial indexes: every claim and outcome updates a row,
-- and each index an update touches costs every job. (Counts per state and
-- task scan the table, and pruning walks it by id: neither is on the hot
-- path.)
CREATE INDEX jobs_ready ON runyard.jobs (priority DESC, run_at, id) WHERE state = 0;
CREATE INDEX jobs_due ON runyard.jobs (run_at) WHERE state = 0;
CREATE INDEX jobs_leases ON runyard.jobs (lease_until) WHERE state = 2;
CREATE UNIQUE INDEX jobs_key ON runyard.jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE runyard.attempts (
    job         bigint  NOT NULL,
    n           integer NOT NULL,
    outcome     text    NOT NULL,
    started_at  bigint  NOT NULL,
    duration_us bigint  NOT NULL,
    queued_us   bigint  NOT NULL,
    error       text,
    permanent   boolean NOT NULL DEFAULT false,
    detail      text,
    worker      text,
    PRIMARY KEY (job, n)
);

-- New jobs wake the workers listening on the schema's channel, however
-- they were added; once per statement, delivered at commit.
CREATE FUNCTION runyard.notify_workers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('runyard_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_added AFTER INSERT ON runyard.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION runyard.notify_workers();
