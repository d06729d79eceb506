-- 0003: the events table again, with its kind check written as ORs.
-- "kind IN ('log', 'step', 'run')" made SQLite build a temporary table for
-- every inserted row (EXPLAIN shows OpenEphemeral): about a tenth of the
-- scheduler's time while a chatty step logs (bench/engine).
CREATE TABLE events_new (
	run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	seq    INTEGER NOT NULL,
	ts     TEXT NOT NULL,
	kind   TEXT NOT NULL CHECK (kind = 'log' OR kind = 'step' OR kind = 'run'),
	step   TEXT,
	stream TEXT,
	data   TEXT NOT NULL,
	PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
INSERT INTO events_new (run_id, seq, ts, kind, step, stream, data)
	SELECT run_id, seq, ts, kind, step, stream, data FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
