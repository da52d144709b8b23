-- Per task, its running jobs ('t:' and the task, as the limits name a
-- task's target), read from the newest end of the state index as
-- running_by_worker.sql reads them.
SELECT 't:' || r.task, count(*)::integer FROM (
    SELECT v.task FROM runyard.jobs v WHERE v.state = {RUNNING}
    ORDER BY v.id DESC
    LIMIT (SELECT coalesce(sum(c.n), 0) FROM runyard.counts c WHERE c.state = {RUNNING})
) r
GROUP BY r.task
