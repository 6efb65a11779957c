-- Resolved and closed cases whose follow-up is not recorded yet, with when it falls due (the case list's
-- awaiting_follow_up filter). Rows projected before this migration get it at their next event, or at once
-- from `escalations rebuild case_list`.
ALTER TABLE case_list ADD COLUMN follow_up_due_at timestamptz;
CREATE INDEX case_list_awaiting_follow_up ON case_list (follow_up_due_at) WHERE follow_up_due_at IS NOT NULL;
