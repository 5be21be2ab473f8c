-- Switchboard schema, PostgreSQL. Timestamps are BIGINT milliseconds since the Unix epoch
-- (the same representation as the SQLite backend), ids are UUID text.
CREATE TABLE center_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    languages TEXT NOT NULL
);
INSERT INTO center_settings (id, name, time_zone, languages) VALUES (1, 'Switchboard', 'UTC', 'en');

CREATE TABLE roles (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL,
    scope TEXT NOT NULL,
    builtin BOOLEAN NOT NULL
);

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX teams_name ON teams (lower(name));

CREATE TABLE capacity_profiles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    max_chats INTEGER NOT NULL,
    max_calls INTEGER NOT NULL,
    voice_outbound BOOLEAN NOT NULL
);
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
    totp_enabled BOOLEAN NOT NULL,
    totp_last_step BIGINT NOT NULL,
    disabled BOOLEAN NOT NULL,
    presence TEXT NOT NULL,
    presence_since BIGINT NOT NULL,
    presence_forced_from TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);

CREATE TABLE team_managers (
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);

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
);
CREATE UNIQUE INDEX queues_sibling_name ON queues (channel, parent_key, lower(name));

CREATE TABLE queue_agents (
    queue_id TEXT NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (queue_id, user_id)
);

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
);

CREATE TABLE custom_statuses (
    name TEXT PRIMARY KEY
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    mfa BOOLEAN NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

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
    created_at BIGINT NOT NULL,
    assigned_at BIGINT,
    ended_at BIGINT,
    end_reason TEXT
);
CREATE INDEX contacts_status ON contacts (status, created_at);
