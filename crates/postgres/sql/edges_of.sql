-- The parents of jobs $1, by child and position: child, parent.
SELECT child, parent FROM runyard.edges WHERE child = ANY($1) ORDER BY child, position
