-- Cancels every waiting job; returns their ids.
UPDATE runyard_jobs SET state = {CANCELLED} WHERE state = {WAITING} RETURNING id
