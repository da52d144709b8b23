-- Ends the pause of task ?1.
DELETE FROM runyard_paused WHERE task = ?1
