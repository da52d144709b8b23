-- Job ?1 is after job ?3 (its edge number ?2), seeing its output under key
-- ?4 (a list of outputs when ?5).
INSERT INTO runyard_edges (child, pos, parent, key, many) VALUES (?1, ?2, ?3, ?4, ?5)
