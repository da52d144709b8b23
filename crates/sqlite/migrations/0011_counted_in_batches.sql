-- runyard state file, schema version 11: the kept counts of schema 9 stay
-- true as before, but the three changes every job of a drain makes are
-- counted by runyard's own statements, a batch at a time, in the
-- transaction that makes them, instead of by a trigger a row: adding a
-- job, claiming a waiting one (waiting to running) and recording a
-- success (running to succeeded). A trigger a row cost a fifth of a
-- drain's rate. Every other change (retries, rescues, cancels, blocked
-- jobs released, deletes) is still counted by the triggers.
--
-- Every statement that adds a job, sets a job running or records a
-- success is runyard's (claim*.sql, finish.sql, insert*_job.sql), and
-- each counts what it changed before its transaction commits; a file of
-- schema 11 is refused by older builds, which counted by trigger alone.
DROP TRIGGER runyard_counts_insert;

DROP TRIGGER runyard_counts_update;

CREATE TRIGGER runyard_counts_update AFTER UPDATE OF state, task ON runyard_jobs
WHEN (old.state <> new.state OR old.task <> new.task)
    AND NOT (old.task = new.task
             AND ((old.state = {WAITING} AND new.state = {RUNNING})
                  OR (old.state = {RUNNING} AND new.state = {SUCCEEDED})))
BEGIN
    UPDATE runyard_counts SET n = n - 1 WHERE task = old.task AND state = old.state;
    INSERT INTO runyard_counts (task, state, n) VALUES (new.task, new.state, 1)
    ON CONFLICT (task, state) DO UPDATE SET n = n + 1;
END;
