-- runyard state file, schema version 5: flow control (see
-- `runyard_core::flow` and docs/backends.md §8).
--
-- A job's row gains its unique key, the limits it carries (its task's
-- concurrency and rate, its concurrency key with the limit it gives each
-- value, its rate key with its rate; rates as `N/s`, `N/m`, `N/h`), whether
-- it carries any limit at all (`limited`: a claim takes the one-statement
-- path while no waiting job does, no limit is stored and no task is paused),
-- and its fair tag: claims take due jobs by (priority DESC, tag, id). A
-- waiting job has no tag (NULL) until it is due; the first claim after its
-- run-at gives it one. The waiting jobs of an older file are given theirs
-- so, in id order.
ALTER TABLE runyard_jobs ADD COLUMN unique_key TEXT;
ALTER TABLE runyard_jobs ADD COLUMN task_concurrency INTEGER;
ALTER TABLE runyard_jobs ADD COLUMN task_rate TEXT;
ALTER TABLE runyard_jobs ADD COLUMN concurrency_key TEXT;
ALTER TABLE runyard_jobs ADD COLUMN key_concurrency INTEGER;
ALTER TABLE runyard_jobs ADD COLUMN rate_key TEXT;
ALTER TABLE runyard_jobs ADD COLUMN key_rate TEXT;
ALTER TABLE runyard_jobs ADD COLUMN limited INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runyard_jobs ADD COLUMN tag INTEGER;

-- The claim order of due jobs, and the waiting jobs not yet due (or not
-- yet given their tag) by run-at.
DROP INDEX runyard_jobs_ready;
CREATE INDEX runyard_jobs_fair ON runyard_jobs (priority DESC, tag, id)
    WHERE state = 0 AND tag IS NOT NULL;
CREATE INDEX runyard_jobs_untagged ON runyard_jobs (run_at, id)
    WHERE state = 0 AND tag IS NULL;
-- Whether some waiting job carries a limit.
CREATE INDEX runyard_jobs_limited ON runyard_jobs (id) WHERE state = 0 AND limited = 1;
-- The holder of a unique key (waiting or blocked), and the jobs with the
-- key that succeeded (their run-at is their end).
CREATE INDEX runyard_jobs_unique ON runyard_jobs (unique_key, state, run_at)
    WHERE unique_key IS NOT NULL;
-- The running jobs, by what they count against (concurrency is counted
-- from here: exact in every transaction, with nothing to keep in step).
CREATE INDEX runyard_jobs_running ON runyard_jobs (task, concurrency_key) WHERE state = 2;

-- Limits stored with `runyard limit`: the target as JSON
-- (`runyard_core::LimitTarget`), its concurrency and its rate.
CREATE TABLE runyard_limits (
    target      TEXT PRIMARY KEY,
    concurrency INTEGER,
    rate        TEXT
) WITHOUT ROWID;

-- Paused tasks; the empty name pauses every task.
CREATE TABLE runyard_paused (
    task TEXT PRIMARY KEY
) WITHOUT ROWID;

-- The last tag given to each fairness key, and (under the empty key) the
-- largest tag given so far.
CREATE TABLE runyard_fair (
    key  TEXT PRIMARY KEY,
    last INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO runyard_fair (key, last) VALUES ('', 0);

-- The starts each rate target admitted (`t:TASK` or `k:KEY`), at their
-- times; those older than the target's window are dropped as claims pass.
CREATE TABLE runyard_starts (
    target TEXT    NOT NULL,
    at     INTEGER NOT NULL
);
CREATE INDEX runyard_starts_target ON runyard_starts (target, at);
