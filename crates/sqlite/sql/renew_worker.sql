-- Renews worker ?2's own row (host ?3, pid ?4, started at ?5) at ?1.
UPDATE runyard_workers SET last_heartbeat = ?1
WHERE name = ?2 AND host = ?3 AND pid = ?4 AND started_at = ?5
