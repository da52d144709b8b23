-- Rate target ?1 admitted a start at ?2.
INSERT INTO runyard_starts (target, at) VALUES (?1, ?2)
