-- Marks attempt ?3 (claim ?5) of job ?2, held by worker ?4, as started at ?1.
UPDATE runyard_jobs SET started = 1, claimed_at = ?1
WHERE id = ?2 AND attempt = ?3 AND state = {RUNNING} AND worker = ?4 AND claims = ?5
