-- runyard queue schema, version 6: schedules (docs/backends.md §9).
--
-- A job that a schedule made keeps the schedule's name and its tick.
ALTER TABLE runyard.jobs
    ADD COLUMN schedule text,
    ADD COLUMN tick     bigint;

-- A schedule: when it ticks (a cron expression in a zone, or every
-- `every_us` microseconds from `anchor`), its policy, and what each tick
-- submits (`jobs`: runyard_queue::encode_jobs). Every tick up to
-- `last_tick` is settled for good (fired, skipped or missed); `next_tick`
-- is the first after it (NULL when there is none), the time a worker
-- fires it. `fire_tick` and `fire_job` are its last submission (a tick's,
-- or a `schedule run`'s) and the first job of it. A firing transaction
-- locks the row (`FOR UPDATE SKIP LOCKED`) and moves `last_tick` in the
-- transaction that inserts the jobs.
CREATE TABLE runyard.schedules (
    name         text     PRIMARY KEY,
    kind         text     NOT NULL CHECK (kind IN ('cron', 'every')),
    cron         text,
    zone         text,
    every_us     bigint,
    anchor       bigint,
    overlap      text     NOT NULL CHECK (overlap IN ('allow', 'skip')),
    grace_us     bigint   NOT NULL,
    catch_up     text     NOT NULL CHECK (catch_up IN ('none', 'latest', 'all')),
    catch_up_max integer  NOT NULL,
    jobs         text     NOT NULL,
    paused       boolean  NOT NULL DEFAULT false,
    created_at   bigint   NOT NULL,
    updated_at   bigint   NOT NULL,
    last_tick    bigint   NOT NULL,
    next_tick    bigint,
    fire_tick    bigint,
    fire_job     bigint,
    fired        bigint   NOT NULL DEFAULT 0,
    skipped      bigint   NOT NULL DEFAULT 0,
    missed       bigint   NOT NULL DEFAULT 0
);

-- The schedules a worker looks at: those due, not paused.
CREATE INDEX schedules_due ON runyard.schedules (next_tick)
    WHERE NOT paused AND next_tick IS NOT NULL;
