-- The restricted emergency log (EMG-6) and the notification template (EMG-7).
-- One row per emergency call an agent placed: who, when, what was dialled and sent, and where
-- the notification mail stands. No foreign key to users: the row keeps the agent's name as it
-- was, and the log outlives any change to the user.
CREATE TABLE emergency_calls (
    call_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    agent_name TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    dialled TEXT NOT NULL,
    number TEXT NOT NULL,
    test INTEGER NOT NULL,
    callback_number TEXT,
    location TEXT,
    -- `no_contacts`, `queued`, `sent` or `failed` (with the last error).
    mail_status TEXT NOT NULL,
    mail_error TEXT,
    mail_sent_at INTEGER
) STRICT;
CREATE INDEX emergency_calls_started ON emergency_calls (started_at);
CREATE INDEX emergency_calls_agent ON emergency_calls (agent_id, started_at);

-- The "Emergency Call Notification" template; no row means the default.
CREATE TABLE emergency_template (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
