-- Emergency calls made by agents (EMG-1, EMG-3, EMG-9) and dispatchable locations.

-- The emergency numbers the center recognises, per country, in the order admins keep them.
-- `trunk_id` is a direct-routing rule: calls to the number leave through that trunk rather
-- than through a trunk allowed to carry emergency calls. A trunk named here cannot be deleted.
CREATE TABLE emergency_numbers (
    country TEXT NOT NULL,
    number TEXT NOT NULL,
    test BOOLEAN NOT NULL,
    trunk_id TEXT REFERENCES trunks (id),
    position BIGINT NOT NULL,
    PRIMARY KEY (country, number)
);
INSERT INTO emergency_numbers (country, number, test, trunk_id, position) VALUES
    ('US', '911', FALSE, NULL, 0),
    ('US', '933', TRUE, NULL, 1),
    ('CA', '911', FALSE, NULL, 2),
    ('CA', '933', TRUE, NULL, 3),
    ('PR', '911', FALSE, NULL, 4),
    ('PR', '933', TRUE, NULL, 5),
    ('GB', '999', FALSE, NULL, 6),
    ('GB', '112', FALSE, NULL, 7),
    ('DK', '112', FALSE, NULL, 8);

-- Outbound trunks allowed to carry emergency calls.
ALTER TABLE trunks ADD COLUMN emergency BOOLEAN NOT NULL DEFAULT FALSE;

-- Sites agents work at, each with its civic address (RFC 5139 fields; `method` as RFC 4119).
CREATE TABLE sites (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    country TEXT NOT NULL,
    state TEXT NOT NULL,
    city TEXT NOT NULL,
    street TEXT NOT NULL,
    number TEXT NOT NULL,
    postcode TEXT NOT NULL,
    building TEXT NOT NULL,
    floor TEXT NOT NULL,
    room TEXT NOT NULL,
    method TEXT NOT NULL
);

-- A user works at one site at most; a site with users on it cannot be deleted.
ALTER TABLE users ADD COLUMN site_id TEXT REFERENCES sites (id);

-- An agent's own address (at home, say), set by an admin or by the agent; it wins over the
-- site's.
CREATE TABLE agent_addresses (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    country TEXT NOT NULL,
    state TEXT NOT NULL,
    city TEXT NOT NULL,
    street TEXT NOT NULL,
    number TEXT NOT NULL,
    postcode TEXT NOT NULL,
    building TEXT NOT NULL,
    floor TEXT NOT NULL,
    room TEXT NOT NULL,
    method TEXT NOT NULL,
    set_by TEXT NOT NULL
);

-- The pool callback numbers are leased from, as the admin wrote it (`15550190-15550199`).
ALTER TABLE center_settings ADD COLUMN callback_pool TEXT NOT NULL DEFAULT '';

-- Callback numbers leased to agents who dialled an emergency number (EMG-3, EMG-4): one row
-- per number, kept after expiry so the least recently used free number is leased next.
CREATE TABLE callback_leases (
    number TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    leased_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
