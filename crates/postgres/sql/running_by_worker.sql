-- Per worker, the attempts it runs: claims that have started (as
-- counts_by_task.sql counts them).
SELECT worker, COUNT(*) FROM runyard.jobs
WHERE state = {RUNNING} AND started AND worker IS NOT NULL
GROUP BY 1 ORDER BY 1
