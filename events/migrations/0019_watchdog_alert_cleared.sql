-- When a sent operator alert's deadline stopped being overdue (projections/watchdog_alerts.py): the alert stays
-- on record for 90 days from then, and is pruned after. Set back to NULL if the deadline is found overdue again
-- (a view that lagged), so a deadline still overdue is never forgotten and told twice.
ALTER TABLE watchdog_alerts ADD COLUMN cleared_at timestamptz;
CREATE INDEX watchdog_alerts_cleared ON watchdog_alerts (cleared_at) WHERE cleared_at IS NOT NULL;
