-- Job ?1 stays cancelled, now naming job ?2 as its cause.
UPDATE runyard_jobs SET cause = ?2 WHERE id = ?1
