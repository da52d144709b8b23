-- Fairness key ?1 was last given tag ?2 (it never goes back).
INSERT INTO runyard_fair (key, last) VALUES (?1, ?2)
ON CONFLICT (key) DO UPDATE SET last = MAX(last, excluded.last)
