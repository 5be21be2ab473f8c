-- The Zendesk connector (PLT-9): the account's address (https://{subdomain}.zendesk.com), the
-- agent email its API token belongs to, and the token, sealed like the other secrets the
-- server reads back. All empty until an admin chooses the connector.
ALTER TABLE integration_settings ADD COLUMN zendesk_url TEXT;
ALTER TABLE integration_settings ADD COLUMN zendesk_email TEXT;
ALTER TABLE integration_settings ADD COLUMN zendesk_token TEXT;
