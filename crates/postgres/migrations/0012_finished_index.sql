-- runyard queue schema, version 12: finished jobs by when they finished,
-- so that `runyard status`'s throughput (jobs finished in the last minute)
-- reads the jobs of that minute from this index rather than scanning the
-- table (3.6 s at 10^7 jobs). Partial: a claim or a heartbeat (a job not
-- finished) never writes it; a job's completion adds one entry.
CREATE INDEX jobs_finished ON runyard.jobs (finished_at) WHERE finished_at IS NOT NULL;
