-- Registers worker $1 (host $2, pid $3) at time $4 with lease $5 (in a
-- transaction that first deleted the lapsed rows): nothing when a row of
-- its name is left. Returns whether it was inserted.
INSERT INTO runyard.workers (name, host, pid, started_at, last_heartbeat, lease_us)
VALUES ($1, $2, $3, $4, $4, $5)
ON CONFLICT (name) DO NOTHING
RETURNING true
