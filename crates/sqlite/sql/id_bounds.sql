-- The smallest and largest job ids (NULL for none): the ranges prune walks.
SELECT MIN(id), MAX(id) FROM runyard_jobs
