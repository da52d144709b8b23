-- Records what firing schedule $1 settled: every tick up to $2, the next
-- at $3; its last submission (tick $4, first job $5) when it made one;
-- $6 ticks fired, $7 skipped, $8 missed.
UPDATE runyard.schedules
SET last_tick = $2, next_tick = $3, fire_tick = COALESCE($4, fire_tick),
    fire_job = COALESCE($5, fire_job), fired = fired + $6, skipped = skipped + $7,
    missed = missed + $8
WHERE name = $1
