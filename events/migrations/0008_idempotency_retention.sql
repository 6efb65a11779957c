-- API replies are kept for a retention period (api/idempotency.py RETENTION), then purged in batches.
CREATE INDEX api_idempotency_by_age ON api_idempotency (created_at);
