-- runyard state file, schema version 6: schedules (see
-- `runyard_core::schedule` and docs/backends.md §9).
--
-- A job that a schedule made carries the schedule's name and the tick
-- (microseconds since the epoch) it was made for.
ALTER TABLE runyard_jobs ADD COLUMN schedule TEXT;
ALTER TABLE runyard_jobs ADD COLUMN tick INTEGER;

-- One row per schedule. Its spec: `kind` 'cron' (`cron` the expression,
-- `zone` its IANA zone) or 'every' (`every_us` the interval, `anchor` the
-- time it ticks from: the queue's time when it was added or its spec last
-- changed). Its policy: `overlap` ('allow' | 'skip'), `grace_us`,
-- `catch_up` ('none' | 'latest' | 'all'), `catch_up_max`. `jobs` is the
-- submission each tick makes (`runyard_queue::encode_jobs`).
--
-- Every tick up to `last_tick` is settled for good (fired, skipped or
-- missed); `next_tick` is the first one after it (NULL when there is
-- none). A worker fires a schedule in the write transaction that reads
-- this row, inserts the tick's jobs and advances `last_tick`, so no tick
-- is settled twice. `fire_tick` and `fire_job` are the last submission's
-- tick and first job; `fired`, `skipped` and `missed` count ticks.
CREATE TABLE runyard_schedules (
    name         TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    cron         TEXT,
    zone         TEXT,
    every_us     INTEGER,
    anchor       INTEGER,
    overlap      TEXT    NOT NULL,
    grace_us     INTEGER NOT NULL,
    catch_up     TEXT    NOT NULL,
    catch_up_max INTEGER NOT NULL,
    jobs         TEXT    NOT NULL,
    paused       INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_tick    INTEGER NOT NULL,
    next_tick    INTEGER,
    fire_tick    INTEGER,
    fire_job     INTEGER,
    fired        INTEGER NOT NULL DEFAULT 0,
    skipped      INTEGER NOT NULL DEFAULT 0,
    missed       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- The schedules that may be due, by their next tick.
CREATE INDEX runyard_schedules_due ON runyard_schedules (next_tick)
    WHERE paused = 0 AND next_tick IS NOT NULL;
