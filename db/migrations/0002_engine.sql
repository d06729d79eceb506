-- 0002: the run engine: each run's frozen step graph, its steps, its event
-- log (status changes and log lines, one sequence per run), what a step
-- remembers across attempts and runs, and the environment's secrets.

ALTER TABLE runs ADD COLUMN graph TEXT NOT NULL DEFAULT '[]';   -- steps, inputs, deps as of the start
ALTER TABLE runs ADD COLUMN params TEXT NOT NULL DEFAULT '{}';  -- the environment's params then
ALTER TABLE runs ADD COLUMN outputs_map TEXT NOT NULL DEFAULT '{}'; -- the blueprint's "outputs"
ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN round INTEGER NOT NULL DEFAULT 1;   -- 1 + how often it was retried

CREATE TABLE step_runs (
	id            INTEGER PRIMARY KEY,
	run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	idx           INTEGER NOT NULL,   -- position in runs.graph
	name          TEXT NOT NULL,
	plugin        TEXT NOT NULL,
	status        TEXT NOT NULL DEFAULT 'pending'
	              CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled')),
	attempts      INTEGER NOT NULL DEFAULT 0,  -- all attempts, every round
	round_attempts INTEGER NOT NULL DEFAULT 0, -- attempts since the run (re)started
	retry_at      INTEGER,            -- unix ms: not before (backoff)
	started_at    TEXT,
	finished_at   TEXT,
	outputs       TEXT NOT NULL DEFAULT '{}',
	error_code    TEXT,
	error_message TEXT,
	runner_pid    INTEGER,            -- the process running it now
	UNIQUE (run_id, name)
);

-- The run's history: status changes and log lines, numbered 1, 2, 3 ...
-- per run.  Append-only; the SSE stream replays it.
CREATE TABLE events (
	run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	seq    INTEGER NOT NULL,
	ts     TEXT NOT NULL,
	kind   TEXT NOT NULL CHECK (kind IN ('log', 'step', 'run')),
	step   TEXT,              -- NULL for the run's own events
	stream TEXT,              -- logs: stdout, stderr, info, warn, error, debug
	data   TEXT NOT NULL,     -- a log line, or the JSON of a status change
	PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- What a step keeps across attempts and runs of one environment: its
-- plugin's state (e.g. a pending cloud operation) and its last apply's
-- outputs (destroy reads them).
CREATE TABLE step_state (
	environment_id INTEGER NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
	step           TEXT NOT NULL,
	state          TEXT NOT NULL DEFAULT '{}',
	outputs        TEXT NOT NULL DEFAULT '{}',
	PRIMARY KEY (environment_id, step)
) WITHOUT ROWID;

-- Generated keys and tokens.  Never returned by the API, never logged.
CREATE TABLE secrets (
	environment_id INTEGER NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
	name           TEXT NOT NULL,
	value          TEXT NOT NULL,
	created_at     TEXT NOT NULL,
	PRIMARY KEY (environment_id, name)
) WITHOUT ROWID;
