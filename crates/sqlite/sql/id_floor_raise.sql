-- Keeps ?1, the largest id just deleted, as the floor of the ids to come
-- (id_floor.sql), unless a larger one is kept already.
INSERT INTO runyard_meta (key, value) VALUES ('id_floor', ?1)
ON CONFLICT (key) DO UPDATE
SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))
