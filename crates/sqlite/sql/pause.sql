-- Pauses task ?1 (the empty name: every task).
INSERT INTO runyard_paused (task) VALUES (?1) ON CONFLICT (task) DO NOTHING
