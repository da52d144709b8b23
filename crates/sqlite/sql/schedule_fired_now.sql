-- Schedule ?1 was fired by hand at ?2, its first job ?3 (its ticks are
-- not changed).
UPDATE runyard_schedules SET fire_tick = ?2, fire_job = ?3 WHERE name = ?1
