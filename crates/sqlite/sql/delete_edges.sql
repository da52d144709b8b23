-- The links of job ?1 to the jobs it was after and to those after it,
-- deleted with it.
DELETE FROM runyard_edges WHERE parent = ?1 OR child = ?1
