-- Registers worker ?1 (host ?2, pid ?3) at ?4 with a lease of ?5 microseconds.
INSERT INTO runyard_workers (name, host, pid, started_at, last_heartbeat, lease_us)
VALUES (?1, ?2, ?3, ?4, ?4, ?5)
