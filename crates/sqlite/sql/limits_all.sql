-- The stored limits.
SELECT target, concurrency, rate FROM runyard_limits ORDER BY target
