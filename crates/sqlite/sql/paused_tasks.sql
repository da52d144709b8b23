-- The paused tasks (the empty name: every task).
SELECT task FROM runyard_paused ORDER BY task
