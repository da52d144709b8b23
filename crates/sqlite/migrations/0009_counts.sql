-- runyard state file, schema version 9: the number of jobs of each task in
-- each state, kept as jobs are inserted, change state or task, and are
-- deleted, so that counting them (`runyard status`, `runyard serve`) reads
-- a few rows rather than every job. Only two splits are still counted from
-- the jobs, each over an index and only over the jobs it names: waiting
-- jobs whose run-at is ahead (all of them untagged: a job is tagged once
-- due), and running jobs whose attempt has not started.
--
-- The triggers run in the statement's own transaction: a count never
-- disagrees with the jobs, even across a crash.
CREATE TABLE runyard_counts (
    task  TEXT    NOT NULL,
    state INTEGER NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (task, state)
) WITHOUT ROWID;

INSERT INTO runyard_counts (task, state, n)
SELECT task, state, COUNT(*) FROM runyard_jobs GROUP BY task, state;

CREATE TRIGGER runyard_counts_insert AFTER INSERT ON runyard_jobs
BEGIN
    INSERT INTO runyard_counts (task, state, n) VALUES (new.task, new.state, 1)
    ON CONFLICT (task, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER runyard_counts_delete AFTER DELETE ON runyard_jobs
BEGIN
    UPDATE runyard_counts SET n = n - 1 WHERE task = old.task AND state = old.state;
END;

CREATE TRIGGER runyard_counts_update AFTER UPDATE OF state, task ON runyard_jobs
WHEN old.state <> new.state OR old.task <> new.task
BEGIN
    UPDATE runyard_counts SET n = n - 1 WHERE task = old.task AND state = old.state;
    INSERT INTO runyard_counts (task, state, n) VALUES (new.task, new.state, 1)
    ON CONFLICT (task, state) DO UPDATE SET n = n + 1;
END;
