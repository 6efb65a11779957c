-- The deadline watchdog (projections/watchdog.py) looks for cases whose earliest running deadline is past
-- due. A resolved case's follow-up clock runs too, so the partial index of open cases (0002) does not serve
-- it: this one holds every case with a running deadline, and nothing else.
CREATE INDEX case_list_running_deadline ON case_list (next_deadline_at) WHERE next_deadline_at IS NOT NULL;
