-- The earliest run-at after ?1 of the waiting jobs not yet due.
SELECT MIN(run_at) FROM runyard_jobs INDEXED BY runyard_jobs_untagged
WHERE state = {WAITING} AND tag IS NULL AND run_at > ?1
