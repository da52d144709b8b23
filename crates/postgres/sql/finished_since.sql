-- Jobs that finished since $1.
SELECT COUNT(*) FROM runyard.jobs WHERE state >= {SUCCEEDED} AND finished_at >= $1
