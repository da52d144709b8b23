-- The due, waiting jobs at $1 (or job $2 alone, in any state) with what
-- limits them.
SELECT id, task, state, run_at, task_conc, task_rate_n, task_rate_us, ckey_name, ckey_value,
       ckey_conc, rkey_name, rkey_value, rkey_rate_n, rkey_rate_us
FROM runyard.jobs
WHERE ($2::bigint IS NULL AND state = {WAITING} AND run_at <= $1) OR id = $2
