-- Removes the stored limit of target ?1.
DELETE FROM runyard_limits WHERE target = ?1
