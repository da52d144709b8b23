-- Schedule $1 (its columns as schedules.sql has them), locked to change
-- it or to run it now: waits for a transaction firing it (see
-- src/schedules.rs for how long).
SELECT s.name, s.kind, s.cron, s.zone, s.every_us, s.anchor, s.overlap, s.grace_us, s.catch_up,
       s.catch_up_max, s.jobs, s.paused, s.created_at, s.updated_at, s.last_tick, s.next_tick,
       s.fire_tick, s.fire_job, s.fired, s.skipped, s.missed
FROM runyard.schedules s WHERE s.name = $1
FOR UPDATE
