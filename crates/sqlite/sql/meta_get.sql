-- A value stored with the run, by key ?1.
SELECT value FROM runyard_meta WHERE key = ?1
