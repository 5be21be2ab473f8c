-- Scheduled callbacks (issue 12): a consumer called back at a booked slot, or in their turn
-- after asking from an open queue (`origin` 'in_queue', keeping `enqueued_at`, their place).
-- A claim holds a due row until `locked_until`; every status change is one transaction that
-- checks the status it leaves, so no attempt is made twice.
CREATE TABLE callbacks (
    id TEXT PRIMARY KEY,
    queue_id TEXT NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    number TEXT NOT NULL,
    priority INTEGER NOT NULL,
    origin TEXT NOT NULL,
    enqueued_at INTEGER,
    slot_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    retry_delay_ms INTEGER NOT NULL,
    contact_id TEXT,
    locked_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX callbacks_due ON callbacks (status, due_at);

-- Each try at reaching the consumer, on the row before anyone is dialled.
CREATE TABLE callback_attempts (
    callback_id TEXT NOT NULL REFERENCES callbacks (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    agent_id TEXT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    outcome TEXT,
    PRIMARY KEY (callback_id, number)
) STRICT;

-- What a closed web or mobile queue offers instead of a chat: a JSON list of
-- {"kind": "scheduled_call", "queue_id": …} and {"kind": "email"}.
ALTER TABLE deflection_rules ADD COLUMN offers TEXT NOT NULL DEFAULT '[]';

-- Whether a queue's waiting callers may press * to be called back instead (on unless a row
-- says off).
CREATE TABLE queue_callback_settings (
    queue_id TEXT PRIMARY KEY REFERENCES queues (id) ON DELETE CASCADE,
    in_queue INTEGER NOT NULL
) STRICT;
