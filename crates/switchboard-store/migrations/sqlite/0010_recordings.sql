-- Call recordings (REC-4, REC-5, REC-7): one row per recording, its bytes in the recordings'
-- blob store. No foreign key to calls: call records are written in batches and may reach the
-- database after their recording's first row.
CREATE TABLE recordings (
    id TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    agent_id TEXT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    duration_ms INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    -- The paused spans as a JSON array of [start, end] in ms from the start.
    paused TEXT NOT NULL,
    status TEXT NOT NULL,
    blob_key TEXT NOT NULL
) STRICT;
CREATE INDEX recordings_call ON recordings (call_id);
CREATE INDEX recordings_started ON recordings (started_at);

-- A voice queue's recording setting; a queue without a row records its calls.
CREATE TABLE queue_recording (
    queue_id TEXT PRIMARY KEY REFERENCES queues (id) ON DELETE CASCADE,
    record_calls INTEGER NOT NULL
) STRICT;

-- When the session last passed a TOTP check (sign-in or step-up): downloading a recording
-- needs one within the last 15 minutes.
ALTER TABLE sessions ADD COLUMN step_up_at INTEGER;

-- What an Apps API key may do beyond the Apps API itself (comma-joined: `recordings`).
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
