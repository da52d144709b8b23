-- Stores value ?2 under key ?1 (the schema version, how the run started).
INSERT INTO runyard_meta (key, value) VALUES (?1, ?2)
ON CONFLICT (key) DO UPDATE SET value = excluded.value
