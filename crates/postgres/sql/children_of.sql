-- The children of jobs $1: parent, child, by parent and child.
SELECT DISTINCT parent, child FROM runyard.edges WHERE parent = ANY($1) ORDER BY parent, child
