-- The fair order's frontier (see migration 0005).
SELECT runyard.frontier()
