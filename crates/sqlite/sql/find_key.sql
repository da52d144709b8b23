-- The job with idempotency key ?1.
SELECT id FROM runyard_jobs WHERE idempotency_key = ?1
