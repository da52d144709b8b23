-- The live workers (only the one named ?2, unless it is NULL), by name,
-- each with the jobs it holds leases on.
SELECT w.name, w.host, w.pid, w.started_at, w.last_heartbeat, w.lease_us,
       (SELECT COUNT(*) FROM runyard_jobs j WHERE j.state = {RUNNING} AND j.worker = w.name)
FROM runyard_workers w
WHERE w.last_heartbeat + w.lease_us >= ?1 AND (?2 IS NULL OR w.name = ?2)
ORDER BY w.name
