-- The file's tables, before anything is written to it.
SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name
