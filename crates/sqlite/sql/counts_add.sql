-- Adds ?3 (which may be negative) to the kept count of task ?1 in state
-- code ?2: a transaction's tally of what no trigger counts (counts.rs).
INSERT INTO runyard_counts (task, state, n) VALUES (?1, ?2, ?3)
ON CONFLICT (task, state) DO UPDATE SET n = n + excluded.n
