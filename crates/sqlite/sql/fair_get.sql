-- The last tag given to fairness key ?1 (the empty key: the largest given).
SELECT last FROM runyard_fair WHERE key = ?1
