-- Schedule ?1 (every schedule when ?1 is NULL, by name), with the state,
-- run-at and start of its last submission's first job (NULL when there is
-- none, or it is no longer in the queue).
SELECT s.name, s.kind, s.cron, s.zone, s.every_us, s.anchor,
       s.overlap, s.grace_us, s.catch_up, s.catch_up_max, s.jobs, s.paused,
       s.created_at, s.updated_at, s.last_tick, s.next_tick, s.fire_tick, s.fire_job,
       s.fired, s.skipped, s.missed,
       j.state, j.run_at, j.started
FROM runyard_schedules s LEFT JOIN runyard_jobs j ON j.id = s.fire_job
WHERE ?1 IS NULL OR s.name = ?1
ORDER BY s.name
