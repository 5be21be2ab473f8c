-- Calls in the CRM (PLT-9): an answered call has a ticket like a chat, naming its call and the
-- caller's number; its recordings go to the CRM as uploads (REC-1..REC-6).
ALTER TABLE tickets ADD COLUMN call_id TEXT;
ALTER TABLE tickets ADD COLUMN phone TEXT;
CREATE INDEX calls_contact ON calls (contact_id);
CREATE UNIQUE INDEX tickets_call ON tickets (call_id) WHERE call_id IS NOT NULL;

-- One row per recording sent to the CRM. No foreign key to recordings: the row outlives the
-- file (deleted once uploaded, or by the retention cap) and says where it went or that it was
-- lost. Parts are sent in order; `parts_done` are acknowledged, with the CRM's receipts.
CREATE TABLE recording_uploads (
    recording_id TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    connector TEXT NOT NULL,
    -- `sending`, `uploaded`, `attached`, `failed` or `lost`.
    state TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    parts_total INTEGER NOT NULL,
    parts_done INTEGER NOT NULL,
    -- Where the next part starts, and how large parts are (halved when the CRM says too large).
    bytes_done INTEGER NOT NULL,
    part_bytes INTEGER NOT NULL,
    receipts TEXT NOT NULL,
    last_error TEXT,
    queued_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX recording_uploads_queued ON recording_uploads (queued_at);
