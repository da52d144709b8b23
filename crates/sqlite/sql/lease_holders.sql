-- The workers holding leases now.
SELECT DISTINCT worker FROM runyard_jobs WHERE state = {RUNNING} AND worker IS NOT NULL
