-- The jobs after job $1, by id.
SELECT DISTINCT child FROM runyard.edges WHERE parent = $1 ORDER BY child
