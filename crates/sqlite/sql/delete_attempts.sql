-- The attempts of job ?1, deleted with it.
DELETE FROM runyard_attempts WHERE job = ?1
