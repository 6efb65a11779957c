-- A claimed operator alert is leased to the projector instance that claimed it (projections/watchdog_alerts.py):
-- no other instance claims it, nor forgets it, until the lease ends, and the claimant records its outcome
-- only while its attempt is still the row's latest. The retry backoff stays in next_attempt_at.
ALTER TABLE watchdog_alerts ADD COLUMN leased_until timestamptz;
