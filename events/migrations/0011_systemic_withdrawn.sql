-- A withdrawn case (a duplicate, invalid, withdrawn by the customer) leaves the systemic counts: its opening
-- no longer makes its account at risk and its root cause no longer counts toward a systemic issue.
-- Rows projected before this migration get it from `escalations rebuild systemic`.
ALTER TABLE systemic_cases ADD COLUMN withdrawn boolean NOT NULL DEFAULT false;
