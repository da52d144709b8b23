-- Adds schedule ?1: its spec (kind ?2, cron expression ?3 in zone ?4, or
-- interval ?5 from anchor ?6), its policy (?7 to ?10) and submission ?11,
-- at time ?12, its ticks settled up to ?14 and the next one at ?13.
INSERT INTO runyard_schedules
    (name, kind, cron, zone, every_us, anchor, overlap, grace_us, catch_up, catch_up_max, jobs,
     created_at, updated_at, last_tick, next_tick)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?14, ?13)
