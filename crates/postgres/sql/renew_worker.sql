-- Renews the row of worker $1 (host $2, pid $3, started at $4) at time $5,
-- or puts it back (lease $6) when it was deleted while the worker was away
-- and nobody has taken the name. Returns false when somebody has.
WITH renewed AS (
    UPDATE runyard.workers SET last_heartbeat = $5
    WHERE name = $1 AND host = $2 AND pid = $3 AND started_at = $4
    RETURNING 1
), back AS (
    INSERT INTO runyard.workers (name, host, pid, started_at, last_heartbeat, lease_us)
    SELECT $1::text, $2::text, $3::integer, $4::bigint, $5::bigint, $6::bigint
    WHERE NOT EXISTS (SELECT 1 FROM renewed)
    ON CONFLICT (name) DO NOTHING
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM renewed) OR EXISTS (SELECT 1 FROM back)
