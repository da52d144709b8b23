-- Puts worker ?1's row back (host ?2, pid ?3, started at ?4, heartbeat ?5,
-- lease ?6 microseconds) unless another worker took the name.
INSERT INTO runyard_workers (name, host, pid, started_at, last_heartbeat, lease_us)
VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO NOTHING
