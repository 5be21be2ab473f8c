-- The agent's workspace: outbound calls (a call's direction), the whisper and countdown agents
-- hear before a caller is connected (the center's, and queues' changes to it), and the
-- incoming-call tone among an agent's notification choices.
ALTER TABLE calls ADD COLUMN direction TEXT NOT NULL DEFAULT 'inbound';
ALTER TABLE calls ADD COLUMN whisper_ms INTEGER;

CREATE TABLE whisper_settings (
    -- 'center', or a voice queue's id.
    scope TEXT PRIMARY KEY,
    message TEXT,
    text TEXT,
    speed INTEGER,
    countdown INTEGER
) STRICT;

ALTER TABLE notification_settings ADD COLUMN new_call_tone TEXT NOT NULL DEFAULT 'ring';
ALTER TABLE notification_settings ADD COLUMN call_repeat_seconds INTEGER;
