-- Switchboard schema, SQLite. STRICT tables: booleans and timestamps are INTEGER
-- (timestamps are milliseconds since the Unix epoch), ids are UUID text.
CREATE TABLE center_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    languages TEXT NOT NULL
) STRICT;
INSERT INTO center_settings (id, name, time_zone, languages) VALUES (1, 'Switchboard', 'UTC', 'en');

CREATE TABLE roles (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL,
    scope TEXT NOT NULL,
    builtin INTEGER NOT NULL
) STRICT;

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX teams_name ON teams (lower(name));

CREATE TABLE capacity_profiles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    max_chats INTEGER NOT NULL,
    max_calls INTEGER NOT NULL,
    voice_outbound INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX capacity_profiles_name ON capacity_profiles (lower(name));

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    email TEXT,
    role_key TEXT NOT NULL REFERENCES roles (key),
    capacity_profile_id TEXT REFERENCES capacity_profiles (id),
    languages TEXT NOT NULL,
    emergency_contacts TEXT NOT NULL,
    password_hash TEXT,
    totp_secret TEXT,
    totp_enabled INTEGER NOT NULL,
    totp_last_step INTEGER NOT NULL,
    disabled INTEGER NOT NULL,
    presence TEXT NOT NULL,
    presence_since INTEGER NOT NULL,
    presence_forced_from TEXT,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
) STRICT;

CREATE TABLE team_managers (
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
) STRICT;

CREATE TABLE queues (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    parent_id TEXT REFERENCES queues (id),
    -- parent_id or '' for a top-level node, so the unique index below covers the top level.
    parent_key TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    position INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    languages TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX queues_sibling_name ON queues (channel, parent_key, lower(name));

CREATE TABLE queue_agents (
    queue_id TEXT NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (queue_id, user_id)
) STRICT;

CREATE TABLE business_hours (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope_key TEXT NOT NULL UNIQUE,
    queue_id TEXT REFERENCES queues (id) ON DELETE CASCADE,
    channel TEXT,
    language TEXT,
    time_zone TEXT NOT NULL,
    periods TEXT NOT NULL,
    holidays TEXT NOT NULL,
    closures TEXT NOT NULL
) STRICT;

CREATE TABLE custom_statuses (
    name TEXT PRIMARY KEY
) STRICT;

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    mfa INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    queue_id TEXT REFERENCES queues (id),
    issue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    language TEXT,
    status TEXT NOT NULL,
    agent_id TEXT REFERENCES users (id),
    customer TEXT,
    created_at INTEGER NOT NULL,
    assigned_at INTEGER,
    ended_at INTEGER,
    end_reason TEXT
) STRICT;
CREATE INDEX contacts_status ON contacts (status, created_at);
