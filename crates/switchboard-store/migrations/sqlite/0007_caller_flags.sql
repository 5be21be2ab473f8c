-- Caller flags from SIP headers (RDP-2): a trunk's header mapping and a call's reserved
-- properties.
ALTER TABLE trunks ADD COLUMN header_flags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE calls ADD COLUMN verified_customer INTEGER;
ALTER TABLE calls ADD COLUMN bad_actor INTEGER;
ALTER TABLE calls ADD COLUMN repeat_customer INTEGER;
