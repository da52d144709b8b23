-- The parents of the jobs with ids from $1 to $2, by child and position:
-- child, parent.
SELECT child, parent FROM runyard.edges WHERE child BETWEEN $1 AND $2 ORDER BY child, position
