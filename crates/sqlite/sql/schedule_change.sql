-- Changes schedule ?1's definition (its columns as schedule_add.sql has
-- them) at time ?12: ticks settled up to ?14, the next one at ?13. Its
-- paused flag, last submission and counters are kept.
UPDATE runyard_schedules
SET kind = ?2, cron = ?3, zone = ?4, every_us = ?5, anchor = ?6, overlap = ?7, grace_us = ?8,
    catch_up = ?9, catch_up_max = ?10, jobs = ?11, updated_at = ?12, last_tick = ?14,
    next_tick = ?13
WHERE name = ?1
