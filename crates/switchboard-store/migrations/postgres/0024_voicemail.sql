-- Voicemail (AHD-7): a voice rule's `voicemail` action records at most voicemail_seconds of
-- the caller (NULL for every other action).
ALTER TABLE deflection_rules ADD COLUMN voicemail_seconds BIGINT;

-- One row per voicemail left at a closed queue; its audio is the recording recording_id in
-- the recordings' blob store (no foreign key: the recording's row goes with retention, the
-- voicemail stays). contact_id is the contact that routes it to the queue's agents, NULL when
-- it went to the CRM as the call's ticket.
CREATE TABLE voicemails (
    recording_id TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    queue_id TEXT REFERENCES queues (id) ON DELETE SET NULL,
    queue_path TEXT NOT NULL,
    caller TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    blob_key TEXT NOT NULL,
    contact_id TEXT UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX voicemails_created ON voicemails (created_at);
