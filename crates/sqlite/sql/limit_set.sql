-- Stores limit ?2 (concurrency) and ?3 (rate) for target ?1.
INSERT INTO runyard_limits (target, concurrency, rate) VALUES (?1, ?2, ?3)
ON CONFLICT (target) DO UPDATE SET concurrency = excluded.concurrency, rate = excluded.rate
