-- The SMS channel (issue 12): the connector's settings, the senders we know, inbound messages
-- as Twilio delivered them, outbound messages with their delivery state, and agents' numbers
-- for the incoming-call notification (NTF-4).

-- One row: which connector sends (`log`, the outbox folder; or `twilio`), Twilio's account,
-- its auth token (sealed), our number, the API's base URL, the public URL Twilio signs for
-- the inbound webhook, and whether incoming calls also text the ringing agent.
CREATE TABLE sms_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    connector TEXT NOT NULL,
    account_sid TEXT,
    sms_auth_token TEXT,
    from_number TEXT,
    api_base TEXT,
    public_url TEXT,
    notify_agents INTEGER NOT NULL DEFAULT 0
) STRICT;

-- A phone number that texted us: the visitor its conversations belong to, and when it was
-- sent the queue menu that it has not answered yet.
CREATE TABLE sms_senders (
    phone TEXT PRIMARY KEY,
    visitor_id TEXT NOT NULL REFERENCES visitors (id) ON DELETE CASCADE,
    menu_sent_at INTEGER
) STRICT;

-- Every inbound message once, by Twilio's MessageSid (a webhook Twilio retries is the same
-- row); contact_id is the conversation it joined, if any.
CREATE TABLE sms_inbound (
    message_sid TEXT PRIMARY KEY,
    from_number TEXT NOT NULL,
    to_number TEXT NOT NULL,
    body TEXT NOT NULL,
    contact_id TEXT,
    received_at INTEGER NOT NULL
) STRICT;

-- Every outbound message, named by the job that sends it. purpose: reply (an agent's message
-- in a conversation), menu, after_hours, agent_notice. status: queued, sent, delivered,
-- undelivered, failed (Twilio's words; sent once the API accepted it).
CREATE TABLE sms_outbound (
    id TEXT PRIMARY KEY,
    contact_id TEXT,
    to_number TEXT NOT NULL,
    body TEXT NOT NULL,
    purpose TEXT NOT NULL,
    status TEXT NOT NULL,
    provider_sid TEXT,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX sms_outbound_provider ON sms_outbound (provider_sid);

-- The number on an agent's profile that incoming calls are texted to (NTF-4).
CREATE TABLE sms_agent_numbers (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    phone TEXT NOT NULL
) STRICT;
