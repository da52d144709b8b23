-- runyard state file, schema version 7: the fair index carries what a claim
-- under limits reads of each due job (its run-at, task and carried limits),
-- so that its walk in claim order reads the index alone, with no lookup of
-- the table for each job it passes over. Same name, same order, same rows.
DROP INDEX runyard_jobs_fair;
CREATE INDEX runyard_jobs_fair ON runyard_jobs
    (priority DESC, tag, id, run_at, task, concurrency_key, key_concurrency, rate_key, key_rate,
     task_concurrency, task_rate)
    WHERE state = 0 AND tag IS NOT NULL;
