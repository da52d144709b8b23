-- Schedule ?1 settled its ticks up to ?2 (the next one at ?3): ?6 fired
-- (the last at tick ?4 with first job ?5, both NULL when none fired), ?7
-- skipped, ?8 missed.
UPDATE runyard_schedules
SET last_tick = ?2, next_tick = ?3, fire_tick = coalesce(?4, fire_tick),
    fire_job = coalesce(?5, fire_job), fired = fired + ?6, skipped = skipped + ?7,
    missed = missed + ?8
WHERE name = ?1
