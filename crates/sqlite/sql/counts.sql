-- Jobs per (state code, run-at after ?1, counted as started).
SELECT state, state = {WAITING} AND run_at > ?1, state <> {RUNNING} OR started, COUNT(*)
FROM runyard_jobs GROUP BY 1, 2, 3
