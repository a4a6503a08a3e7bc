-- The embedded job store's tables (worker/store/sqlite_store.py), version 2.
-- Run as one transaction by every process that opens the file while its
-- user_version is below 2: every statement may run again (a version 1 file gains
-- the tables of version 2; no ALTER, which could not run twice).

CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    state TEXT NOT NULL,
    started_at REAL,
    finished_at REAL,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    running INTEGER NOT NULL DEFAULT 0,
    next_index INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    changed_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at DESC);
CREATE INDEX IF NOT EXISTS jobs_by_expiry ON jobs (expires_at);

-- One row per image; state is one of worker.jobs.ImageState's names.
CREATE TABLE IF NOT EXISTS images (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    started REAL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;

-- Counters for /metrics: images by outcome, operation times (worker.store.metrics).
CREATE TABLE IF NOT EXISTS stats (name TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID;

-- Jobs by state, kept by every change; expired jobs leave it when they are deleted.
CREATE TABLE IF NOT EXISTS job_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
DELETE FROM job_counts;
INSERT INTO job_counts (state, n) SELECT state, COUNT(*) FROM jobs GROUP BY state;

-- The outputs of queued and running jobs: one writer per output.
CREATE TABLE IF NOT EXISTS outputs (
    path TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outputs_by_job ON outputs (job_id);

-- The images each keyed claim took (Job.claims): a claim made again answers them.
CREATE TABLE IF NOT EXISTS claims (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    key INTEGER NOT NULL,
    first INTEGER NOT NULL,
    taken INTEGER NOT NULL,
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;

-- The API key that submitted each job (anonymous jobs have no row): its listing, its
-- count of queued and running jobs.
CREATE TABLE IF NOT EXISTS job_owners (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    owner TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_owners_by_owner ON job_owners (owner);

-- The inputs of queued and running jobs (several jobs may read one): no output over them.
CREATE TABLE IF NOT EXISTS inputs (
    path TEXT NOT NULL,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    PRIMARY KEY (path, job_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inputs_by_job ON inputs (job_id);

-- Each key's submission token bucket (worker.store.protocol.token_bucket).
CREATE TABLE IF NOT EXISTS rates (
    owner TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    at REAL NOT NULL
) WITHOUT ROWID;

-- Who runs each running image (worker.liveness.Holder); the row goes when it stops running.
CREATE TABLE IF NOT EXISTS holders (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    node TEXT NOT NULL,
    pid INTEGER NOT NULL,
    until INTEGER NOT NULL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
-- The running images: what the reaper looks at.
CREATE INDEX IF NOT EXISTS images_running ON images (job_id, idx) WHERE state = 'running';

-- The workers' last heartbeats (worker.liveness.Beat): pids is a JSON list.
CREATE TABLE IF NOT EXISTS workers (
    node TEXT PRIMARY KEY,
    at REAL NOT NULL,
    pids TEXT NOT NULL
) WITHOUT ROWID;

PRAGMA user_version = 2;
