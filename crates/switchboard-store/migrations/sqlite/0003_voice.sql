-- Voice: trunks, dialled numbers, agents' SIP phones, recorded prompts and hold music, call history.
CREATE TABLE trunks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    direction TEXT NOT NULL,
    addresses TEXT NOT NULL,
    username TEXT,
    secret TEXT,
    host TEXT,
    port INTEGER,
    tcp INTEGER NOT NULL,
    caller_id TEXT,
    dial_rules TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE dids (
    number TEXT PRIMARY KEY,
    entry_queue_id TEXT REFERENCES queues (id) ON DELETE SET NULL,
    language TEXT
) STRICT;

-- An agent's SIP phone registers as the agent's username; only HA1 (MD5 of user:realm:password) is kept.
CREATE TABLE sip_phones (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    ha1 TEXT NOT NULL
) STRICT;

-- Uploaded audio for voice: `menu:<queue>:<language>` prompts and `hold:<queue>` / `hold:default` music.
CREATE TABLE voice_audio (
    key TEXT PRIMARY KEY,
    blob_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    caller TEXT NOT NULL,
    did TEXT NOT NULL,
    ivr_path TEXT NOT NULL,
    queue_id TEXT,
    agent_id TEXT,
    contact_id TEXT,
    started_at INTEGER NOT NULL,
    queued_at INTEGER,
    ringing_at INTEGER,
    answered_at INTEGER,
    ended_at INTEGER,
    disposition TEXT NOT NULL,
    ended_by TEXT,
    transfers TEXT NOT NULL,
    rtp_from_caller INTEGER NOT NULL,
    rtp_to_caller INTEGER NOT NULL,
    rtp_from_agent INTEGER NOT NULL,
    rtp_to_agent INTEGER NOT NULL
) STRICT;
CREATE INDEX calls_started ON calls (started_at);
