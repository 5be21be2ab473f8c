-- After-hours deflection (AHD-1, AHD-2, AHD-4, AHD-5): one rule per channel for the whole
-- center (queue_id NULL; for calls, the IVR's) and per queue, keyed by scope_key
-- ('center:voice', '<queue id>:voice'). A queue's rule, even a disabled one, replaces its
-- channel's. A rule goes with its queue, and with the queue it sends contacts to.
CREATE TABLE deflection_rules (
    scope_key TEXT PRIMARY KEY,
    queue_id TEXT REFERENCES queues (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    action TEXT NOT NULL,
    target_queue_id TEXT REFERENCES queues (id) ON DELETE CASCADE,
    forward_number TEXT,
    messages TEXT NOT NULL
);

-- AHD-6: whether agents may transfer to queues outside their hours (those that deflect or
-- have agents online).
ALTER TABLE center_settings ADD COLUMN after_hours_transfers BOOLEAN NOT NULL DEFAULT FALSE;
