-- The starts of rate target ?1 after ?2.
SELECT COUNT(*) FROM runyard_starts WHERE target = ?1 AND at > ?2
