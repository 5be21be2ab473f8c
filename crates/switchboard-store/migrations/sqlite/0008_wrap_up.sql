-- Wrap-up: the center's dispositions, and what the agent recorded after each contact.
CREATE TABLE dispositions (
    position INTEGER PRIMARY KEY,
    label TEXT NOT NULL
) STRICT;

CREATE TABLE contact_wrap_ups (
    contact_id TEXT PRIMARY KEY REFERENCES contacts (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL REFERENCES users (id),
    disposition TEXT,
    note TEXT NOT NULL,
    at INTEGER NOT NULL
) STRICT;
