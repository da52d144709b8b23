-- The fair order's frontier (see migration 0005, and frontier_few.sql).
SELECT {FRONTIER}
