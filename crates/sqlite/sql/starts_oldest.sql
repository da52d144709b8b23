-- The oldest start of rate target ?1 after ?2 (the first to leave its window).
SELECT MIN(at) FROM runyard_starts WHERE target = ?1 AND at > ?2
