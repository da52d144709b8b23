-- The due, waiting jobs at $1 (or job $2 alone, in any state) with what
-- limits them. The waiting jobs are read from the newest end of the state
-- index, as many as the kept counts say (as running_by_worker.sql reads
-- the running ones), so that right after a deep drain the read does not
-- walk the entries of the jobs that have moved on.
SELECT w.id, w.task, w.state, w.run_at, w.task_conc, w.task_rate_n, w.task_rate_us, w.ckey_name,
       w.ckey_value, w.ckey_conc, w.rkey_name, w.rkey_value, w.rkey_rate_n, w.rkey_rate_us
FROM (SELECT v.id, v.task, v.state, v.run_at, v.task_conc, v.task_rate_n, v.task_rate_us,
             v.ckey_name, v.ckey_value, v.ckey_conc, v.rkey_name, v.rkey_value, v.rkey_rate_n,
             v.rkey_rate_us
      FROM runyard.jobs v
      WHERE $2::bigint IS NULL AND v.state = {WAITING}
      ORDER BY v.id DESC
      LIMIT (SELECT coalesce(sum(c.n), 0) FROM runyard.counts c WHERE c.state = {WAITING})) w
WHERE w.run_at <= $1
UNION ALL
SELECT id, task, state, run_at, task_conc, task_rate_n, task_rate_us, ckey_name, ckey_value,
       ckey_conc, rkey_name, rkey_value, rkey_rate_n, rkey_rate_us
FROM runyard.jobs
WHERE id = $2
