-- Worker $1 publishes tasks $2[i] with the settings their jobs get when a
-- submit leaves them out, and their limits (see migration 0010), on the
-- database's clock; a task another worker published takes these.
INSERT INTO runyard.tasks AS t
    (task, max_attempts, backoff, timeout_us, priority, mode, isolate, task_conc, task_rate_n,
     task_rate_us, worker, published_at)
SELECT u.task, u.max_attempts, u.backoff, u.timeout_us, u.priority, u.mode, u.isolate, u.conc,
       u.rate_n, u.rate_us, $1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
FROM unnest($2::text[], $3::integer[], $4::text[], $5::bigint[], $6::integer[], $7::text[],
            $8::boolean[], $9::integer[], $10::integer[], $11::bigint[])
    AS u(task, max_attempts, backoff, timeout_us, priority, mode, isolate, conc, rate_n, rate_us)
ORDER BY u.task
ON CONFLICT (task) DO UPDATE SET
    max_attempts = excluded.max_attempts, backoff = excluded.backoff,
    timeout_us = excluded.timeout_us, priority = excluded.priority, mode = excluded.mode,
    isolate = excluded.isolate, task_conc = excluded.task_conc,
    task_rate_n = excluded.task_rate_n, task_rate_us = excluded.task_rate_us,
    worker = excluded.worker, published_at = excluded.published_at
