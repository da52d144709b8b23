-- Records a submission of schedule $1 outside its ticks (`schedule run`):
-- at time $2, its first job $3. Its ticks and counters stay.
UPDATE runyard.schedules SET fire_tick = $2, fire_job = $3 WHERE name = $1
