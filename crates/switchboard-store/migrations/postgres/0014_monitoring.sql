-- Live monitoring (MON-5, MON-7).
-- Who ended a contact that was not theirs: a stuck call or chat ended from the monitoring
-- lists names the user, with their name as it was then. Both are set together or not at all.
ALTER TABLE contacts ADD COLUMN ended_by_user_id TEXT REFERENCES users (id);
ALTER TABLE contacts ADD COLUMN ended_by_name TEXT;
-- Where the CRM shows a ticket, with `{external_id}` where its id goes, so a supervisor
-- watching a chat has a link to its record.
ALTER TABLE integration_settings ADD COLUMN crm_record_url TEXT;
