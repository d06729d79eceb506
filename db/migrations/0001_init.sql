-- 0001: environments, what they own in the cloud, their runs, and the audit trail.
-- Timestamps are UTC ISO-8601 text with milliseconds ("2026-11-26T09:30:00.123Z").

CREATE TABLE environments (
	id          INTEGER PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	provider    TEXT NOT NULL CHECK (provider IN ('sandbox', 'gcp')),
	blueprint   TEXT NOT NULL,
	params      TEXT NOT NULL DEFAULT '{}',   -- JSON object, defaults filled in
	status      TEXT NOT NULL DEFAULT 'draft'
	            CHECK (status IN ('draft', 'applying', 'ready', 'failed', 'destroying', 'destroyed')),
	outputs     TEXT NOT NULL DEFAULT '{}',   -- JSON object: ingress_ip, app_url, kiali_url, ...
	active_run_id INTEGER,                    -- the lock: the run now in progress, or NULL
	created_by  TEXT NOT NULL,
	created_at  TEXT NOT NULL,
	updated_by  TEXT NOT NULL,
	updated_at  TEXT NOT NULL
);
CREATE INDEX environments_by_status ON environments (status, id);

CREATE TABLE runs (
	id             INTEGER PRIMARY KEY,
	environment_id INTEGER NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
	action         TEXT NOT NULL CHECK (action IN ('apply', 'destroy', 'plan')),
	status         TEXT NOT NULL DEFAULT 'queued'
	               CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
	created_by     TEXT NOT NULL,
	created_at     TEXT NOT NULL,
	started_at     TEXT,
	finished_at    TEXT,
	error_code     TEXT,
	error_message  TEXT
);
CREATE INDEX runs_by_environment ON runs (environment_id, id);

-- What an environment owns in the cloud. Destroy reads this; DELETE of an
-- environment is refused while it has rows here (unless forced).
CREATE TABLE resources (
	id             INTEGER PRIMARY KEY,
	environment_id INTEGER NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
	kind           TEXT NOT NULL CHECK (kind IN ('cluster', 'vm', 'firewall_rule')),
	name           TEXT NOT NULL,
	self_link      TEXT,
	status         TEXT,
	attrs          TEXT NOT NULL DEFAULT '{}', -- JSON: IPs, CIDRs, endpoint, zone ...
	step           TEXT,                       -- the step that created it
	created_at     TEXT NOT NULL,
	updated_at     TEXT NOT NULL,
	UNIQUE (environment_id, kind, name)
);

-- Who did what, when, from where. Kept when the environment is deleted.
CREATE TABLE audit (
	id     INTEGER PRIMARY KEY,
	at     TEXT NOT NULL,
	actor  TEXT NOT NULL,
	remote TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	detail TEXT
);
