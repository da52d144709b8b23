-- The largest job id so far (0 for none).
SELECT COALESCE(MAX(id), 0) FROM runyard_jobs
