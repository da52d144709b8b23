-- Job ?1 has ?2 more edges to jobs after it.
UPDATE runyard_jobs SET children = children + ?2 WHERE id = ?1
