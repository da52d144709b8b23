-- The schedules by name in byte order (only schedule $1 unless it is
-- NULL), each with the state, run-at and start of its last submission's
-- first job while that job is in the queue.
SELECT s.name, s.kind, s.cron, s.zone, s.every_us, s.anchor, s.overlap, s.grace_us, s.catch_up,
       s.catch_up_max, s.jobs, s.paused, s.created_at, s.updated_at, s.last_tick, s.next_tick,
       s.fire_tick, s.fire_job, s.fired, s.skipped, s.missed,
       j.state, j.run_at, j.started
FROM runyard.schedules s LEFT JOIN runyard.jobs j ON j.id = s.fire_job
WHERE $1::text IS NULL OR s.name = $1
ORDER BY s.name COLLATE "C"
