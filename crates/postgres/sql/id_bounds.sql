-- The lowest and highest job ids.
SELECT MIN(id), MAX(id) FROM runyard.jobs
