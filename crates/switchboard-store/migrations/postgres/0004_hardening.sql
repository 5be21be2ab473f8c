-- Hardening: per-trunk call limits (NULL takes the server's defaults).
ALTER TABLE trunks ADD COLUMN max_calls BIGINT;
ALTER TABLE trunks ADD COLUMN max_calls_per_second BIGINT;
