-- The parents of the jobs with ids from ?1 to ?2, by job and edge order.
SELECT child, parent FROM runyard_edges WHERE child BETWEEN ?1 AND ?2 ORDER BY child, pos
