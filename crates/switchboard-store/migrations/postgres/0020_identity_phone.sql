-- A consumer's phone number from their identity token (UAC-3 for calls): a call from that number
-- has its ticket under the identity, and identifying merges earlier calls' tickets. Kept as its
-- digits alone, so `+1 555-123-4567` and a trunk's `15551234567` are the same number.
ALTER TABLE identities ADD COLUMN phone TEXT;
CREATE INDEX identities_phone ON identities (phone);
CREATE INDEX tickets_phone ON tickets (phone);
