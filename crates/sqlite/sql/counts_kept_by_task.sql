-- Jobs per (task, state code, run-at after ?1, counted as started), by task,
-- from the kept counts (schema 9): each task's count of a state, less its
-- waiting jobs whose run-at is ahead and its running jobs not started,
-- which are counted apart (over the untagged and the state indexes).
WITH later AS (
    SELECT task, COUNT(*) AS n FROM runyard_jobs INDEXED BY runyard_jobs_untagged
    WHERE state = {WAITING} AND tag IS NULL AND run_at > ?1 GROUP BY task
), unstarted AS (
    SELECT task, COUNT(*) AS n FROM runyard_jobs INDEXED BY runyard_jobs_state
    WHERE state = {RUNNING} AND NOT started GROUP BY task
)
SELECT c.task, c.state, 0, 1,
       c.n - CASE c.state
                 WHEN {WAITING} THEN COALESCE((SELECT n FROM later l WHERE l.task = c.task), 0)
                 WHEN {RUNNING} THEN COALESCE((SELECT n FROM unstarted u WHERE u.task = c.task), 0)
                 ELSE 0
             END
FROM runyard_counts c WHERE c.n <> 0
UNION ALL SELECT task, {WAITING}, 1, 1, n FROM later
UNION ALL SELECT task, {RUNNING}, 0, 0, n FROM unstarted
ORDER BY 1
