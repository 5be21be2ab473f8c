-- Web chat: visitors and identities (UAC), chat sessions with reserved properties (RDP),
-- messages, attachments (SMA-2), CRM tickets (PLT-9), background jobs, notification tones (NTF-3).
ALTER TABLE contacts ADD COLUMN transfers INTEGER NOT NULL DEFAULT 0;

CREATE TABLE integration_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- Signs identity tokens (JWT HS256) from the embedding site; shown to admins only.
    identity_secret TEXT NOT NULL,
    crm_connector TEXT NOT NULL,
    crm_webhook_url TEXT,
    crm_webhook_secret TEXT
);

CREATE TABLE identities (
    id TEXT PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    email TEXT,
    name TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE visitors (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    identity_id TEXT REFERENCES identities (id),
    created_at BIGINT NOT NULL
);

CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    contact_id TEXT REFERENCES contacts (id),
    visitor_id TEXT REFERENCES visitors (id),
    identity_id TEXT REFERENCES identities (id),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    transcript TEXT,
    external_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tickets_visitor ON tickets (visitor_id);
CREATE INDEX tickets_identity ON tickets (identity_id);

CREATE TABLE chat_sessions (
    contact_id TEXT PRIMARY KEY REFERENCES contacts (id),
    visitor_id TEXT NOT NULL REFERENCES visitors (id),
    identity_id TEXT REFERENCES identities (id),
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    source TEXT NOT NULL,
    verified_customer BOOLEAN,
    bad_actor BOOLEAN,
    repeat_customer BOOLEAN,
    accepted_at BIGINT
);
CREATE INDEX chat_sessions_visitor ON chat_sessions (visitor_id);

CREATE TABLE chat_messages (
    id TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL REFERENCES chat_sessions (contact_id),
    seq BIGINT NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT,
    body TEXT NOT NULL,
    attachment_id TEXT,
    sent_at BIGINT NOT NULL,
    UNIQUE (contact_id, seq),
    UNIQUE (contact_id, sender, client_id)
);

CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL REFERENCES chat_sessions (contact_id),
    kind TEXT NOT NULL,
    size BIGINT NOT NULL,
    name TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX attachments_contact ON attachments (contact_id);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    locked_until BIGINT,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);

CREATE TABLE tones (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE notification_settings (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    new_chat_tone TEXT NOT NULL,
    new_message_tone TEXT NOT NULL,
    repeat_seconds INTEGER
);
