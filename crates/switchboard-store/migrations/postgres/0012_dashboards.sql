-- Dashboards (PLT-10): agents' presence history, and indexes that let a queue's or a team's
-- dashboard read only the range's contacts. The contact index includes every column the
-- dashboard reads, so a range is an index-only scan.
CREATE TABLE presence_changes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    presence TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX presence_changes_user_at ON presence_changes (user_id, at);

CREATE INDEX contacts_queue_created ON contacts (queue_id, created_at) INCLUDE (assigned_at, ended_at, status);
