-- runyard state file, schema version 3: a job's claim counter, the fencing
-- token. It grows with every claim, undone ones included, so a lease
-- (job, attempt, claim) never repeats even when an undone claim gives its
-- attempt number back.
ALTER TABLE runyard_jobs ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
