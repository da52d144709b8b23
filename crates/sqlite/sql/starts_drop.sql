-- Forgets the starts of rate target ?1 at or before ?2 (out of its window).
DELETE FROM runyard_starts WHERE target = ?1 AND at <= ?2
