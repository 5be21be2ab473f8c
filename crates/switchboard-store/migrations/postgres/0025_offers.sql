-- What consumers are offered instead of chatting or waiting (AHD-4): the help-center address
-- their messages are mailed to (none: they become CRM tickets), and after how many seconds a
-- waiting chat is offered to leave a message instead (none: never).
ALTER TABLE center_settings ADD COLUMN help_email TEXT;
ALTER TABLE center_settings ADD COLUMN wait_offer_seconds BIGINT;
