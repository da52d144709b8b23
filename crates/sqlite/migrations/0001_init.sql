-- runyard state file, schema version 1.
CREATE TABLE runyard_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE runyard_jobs (
    id                 INTEGER PRIMARY KEY,
    task               TEXT    NOT NULL,
    params             TEXT    NOT NULL,
    -- 0 waiting (queued, or scheduled while run_at is ahead), 2 running,
    -- 3 succeeded, 4 dead, 5 cancelled
    state              INTEGER NOT NULL,
    priority           INTEGER NOT NULL,
    -- microseconds since the epoch: when a waiting job may run
    run_at             INTEGER NOT NULL,
    enqueued_at        INTEGER NOT NULL,
    -- attempts claimed so far: the fencing token of the current one
    attempt            INTEGER NOT NULL DEFAULT 0,
    max_attempts       INTEGER NOT NULL,
    attempts_per_round INTEGER NOT NULL,
    backoff            TEXT    NOT NULL,
    timeout_us         INTEGER,
    mode               TEXT    NOT NULL,
    isolate            INTEGER NOT NULL,
    worker             TEXT,
    lease_until        INTEGER,
    claimed_at         INTEGER,
    started            INTEGER NOT NULL DEFAULT 0,
    -- claims undone because their worker died before they were seen starting
    lost_claims        INTEGER NOT NULL DEFAULT 0,
    cancel_requested   INTEGER NOT NULL DEFAULT 0,
    idempotency_key    TEXT UNIQUE,
    output             TEXT
);

CREATE INDEX runyard_jobs_ready ON runyard_jobs (priority DESC, run_at, id) WHERE state = 0;
CREATE INDEX runyard_jobs_leases ON runyard_jobs (lease_until) WHERE state = 2;
CREATE INDEX runyard_jobs_state ON runyard_jobs (state);

CREATE TABLE runyard_attempts (
    job         INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    queued_us   INTEGER NOT NULL,
    error       TEXT,
    permanent   INTEGER NOT NULL DEFAULT 0,
    detail      TEXT,
    PRIMARY KEY (job, n)
) WITHOUT ROWID;
