-- Adds schedule $1, at time $12 (its first settled tick, and its
-- interval's anchor when it has one), ticking next at $13; nothing when
-- another transaction added one of that name first.
INSERT INTO runyard.schedules
    (name, kind, cron, zone, every_us, anchor, overlap, grace_us, catch_up, catch_up_max, jobs,
     created_at, updated_at, last_tick, next_tick)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $12, $13)
ON CONFLICT (name) DO NOTHING
RETURNING name
