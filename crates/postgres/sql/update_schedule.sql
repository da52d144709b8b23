-- Changes schedule $1's definition at time $12: its ticks restart from
-- last tick $13 (kept when its spec is the same), next at $14.
UPDATE runyard.schedules
SET kind = $2, cron = $3, zone = $4, every_us = $5, anchor = $6, overlap = $7, grace_us = $8,
    catch_up = $9, catch_up_max = $10, jobs = $11, updated_at = $12, last_tick = $13,
    next_tick = $14
WHERE name = $1
