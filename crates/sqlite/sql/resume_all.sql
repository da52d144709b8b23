-- Ends every pause.
DELETE FROM runyard_paused
