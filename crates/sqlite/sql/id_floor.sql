-- The id the next job must take, if ids were deleted above every job
-- left (SQLite would give the next job the largest id left plus one, an
-- id a deleted job had): one above the largest id ever deleted. No row
-- otherwise.
SELECT CAST(value AS INTEGER) + 1 FROM runyard_meta
WHERE key = 'id_floor' AND CAST(value AS INTEGER) >= (SELECT COALESCE(MAX(id), 0) FROM runyard_jobs)
