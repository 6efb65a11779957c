-- The deadline watchdog's notifications to the operators (projections/watchdog_alerts.py): one row per overdue
-- deadline and operator target, so each is told once, whichever projector instance finds it first, and a
-- send that fails is retried. Never a case event: the watchdog only reads the record.
CREATE TABLE watchdog_alerts (
    case_id         text        NOT NULL,
    kind            text        NOT NULL,            -- the deadline's kind (acknowledge, resolve, ...)
    level           integer     NOT NULL,
    due_at          timestamptz NOT NULL,
    target          text        NOT NULL,            -- email:<address>, chat:<channel> or webhook:<name>
    found_at        timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    notified_at     timestamptz,
    last_error      text,
    PRIMARY KEY (case_id, kind, level, due_at, target)
);
CREATE INDEX watchdog_alerts_unsent ON watchdog_alerts (next_attempt_at) WHERE notified_at IS NULL;
