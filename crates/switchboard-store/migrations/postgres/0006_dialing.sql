-- Dialling policies, the audit log and the center's country.

-- Class of service: which numbers a scope (`center`, `role:<key>`, `team:<id>`) may dial.
CREATE TABLE dial_policies (
    scope TEXT PRIMARY KEY,
    allowed TEXT NOT NULL,
    allow_patterns TEXT NOT NULL,
    deny_patterns TEXT NOT NULL
);

-- The audit log, append-only.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    subject TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

-- The center's country (its numbering plan and emergency numbers).
ALTER TABLE center_settings ADD COLUMN country TEXT NOT NULL DEFAULT 'US';
