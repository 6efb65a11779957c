-- Tokens can expire, be revoked and be rotated: a name keeps one live token at a time, and its revoked
-- predecessors stay as history (who held access when).
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_name_key;
CREATE UNIQUE INDEX api_tokens_one_live_per_name ON api_tokens (name) WHERE revoked_at IS NULL;
