-- Attempts that ended at or after ?1 and before ?2 (start plus duration,
-- in microseconds), counted per whole minute and outcome; read from the
-- index runyard_attempts_ended.
SELECT (started_at + duration_us) / 60000000 AS minute, outcome, count(*)
FROM runyard_attempts
WHERE started_at + duration_us >= ?1 AND started_at + duration_us < ?2
GROUP BY minute, outcome
