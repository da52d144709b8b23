-- Per worker, the attempts it runs: claims that have started (as
-- counts_by_task.sql counts them). The running jobs are read from the
-- newest end of the state index, as many as the kept counts say
-- (migration 0009, which agree with the jobs in the statement's
-- snapshot): right after a deep drain the index's running entries are
-- mostly of jobs that have moved on, which a plain scan walks, with their
-- heap pages, until vacuum removes them.
SELECT r.worker, COUNT(*) FROM (
    SELECT v.worker, v.started FROM runyard.jobs v WHERE v.state = {RUNNING}
    ORDER BY v.id DESC
    LIMIT (SELECT coalesce(sum(c.n), 0) FROM runyard.counts c WHERE c.state = {RUNNING})
) r
WHERE r.started AND r.worker IS NOT NULL
GROUP BY 1 ORDER BY 1
