-- The ids of the jobs with the idempotency keys in $1.
SELECT idempotency_key, id FROM runyard.jobs WHERE idempotency_key = ANY($1)
