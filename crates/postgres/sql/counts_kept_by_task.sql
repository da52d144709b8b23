-- Jobs per (task, state code, run-at after $1, counted as started), by task,
-- from the kept counts (schema 9): each task's count of a state summed over
-- its shards, less its waiting jobs whose run-at is ahead and its running
-- jobs not started, which are counted apart (over the indexes jobs_due and
-- jobs_state; the running ones from the index's newest end, as many as the
-- kept counts say, as running_by_worker.sql reads them).
WITH later AS (
    SELECT task, COUNT(*) AS n FROM runyard.jobs
    WHERE state = {WAITING} AND tag IS NULL AND run_at > $1 GROUP BY task
), unstarted AS (
    SELECT r.task, COUNT(*) AS n FROM (
        SELECT v.task, v.started FROM runyard.jobs v WHERE v.state = {RUNNING}
        ORDER BY v.id DESC
        LIMIT (SELECT coalesce(sum(c.n), 0) FROM runyard.counts c WHERE c.state = {RUNNING})
    ) r
    WHERE NOT r.started GROUP BY r.task
), kept AS (
    SELECT task, state, SUM(n)::bigint AS n FROM runyard.counts
    GROUP BY task, state HAVING SUM(n) <> 0
)
SELECT k.task, k.state, false, true,
       k.n - CASE k.state
                 WHEN {WAITING} THEN COALESCE((SELECT n FROM later l WHERE l.task = k.task), 0)
                 WHEN {RUNNING} THEN COALESCE((SELECT n FROM unstarted u WHERE u.task = k.task), 0)
                 ELSE 0
             END
FROM kept k
UNION ALL SELECT task, {WAITING}::smallint, true, true, n FROM later
UNION ALL SELECT task, {RUNNING}::smallint, false, false, n FROM unstarted
ORDER BY 1
