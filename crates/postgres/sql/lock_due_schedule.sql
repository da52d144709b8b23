-- Schedule $1 (its columns as schedules.sql has them) to fire it, unless
-- it is paused or another transaction holds it: that one is firing it (or
-- changing it), and this worker goes on to the next schedule.
SELECT s.name, s.kind, s.cron, s.zone, s.every_us, s.anchor, s.overlap, s.grace_us, s.catch_up,
       s.catch_up_max, s.jobs, s.paused, s.created_at, s.updated_at, s.last_tick, s.next_tick,
       s.fire_tick, s.fire_job, s.fired, s.skipped, s.missed
FROM runyard.schedules s WHERE s.name = $1 AND NOT s.paused
FOR UPDATE SKIP LOCKED
