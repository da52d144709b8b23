-- Deletes the workers whose heartbeat lapsed before ?1.
DELETE FROM runyard_workers WHERE last_heartbeat + lease_us < ?1
