-- Read models. Every column is derived from events only (no now()), so a
-- rebuild from event zero must reproduce each row exactly.

CREATE TABLE projection_checkpoints (
    name     text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0
);

-- Case list: one row per case; `state` is the folded EscalationState (JSON).
CREATE TABLE case_list (
    case_id              text PRIMARY KEY,
    stream_id            text        NOT NULL,
    version              integer     NOT NULL,
    status               text        NOT NULL,
    priority             text        NOT NULL,
    severity             text        NOT NULL,
    level                integer     NOT NULL,
    max_level_reached    integer     NOT NULL,
    owner                text,
    customer_id          text        NOT NULL,
    customer_name        text        NOT NULL,
    customer_tier        text        NOT NULL,
    category             text        NOT NULL,
    lifecycle_stage      text        NOT NULL,
    source               text        NOT NULL,
    title                text        NOT NULL,
    opened_at            timestamptz NOT NULL,
    acknowledged_at      timestamptz,
    first_acknowledged_at timestamptz,
    resolved_at          timestamptz,
    first_resolved_at    timestamptz,
    closed_at            timestamptz,
    withdrawn_at         timestamptz,
    next_deadline_at     timestamptz,
    next_deadline_kind   text,
    breached             boolean     NOT NULL DEFAULT false,
    breached_acknowledge boolean     NOT NULL DEFAULT false,
    breached_update      boolean     NOT NULL DEFAULT false,
    breached_resolve     boolean     NOT NULL DEFAULT false,
    paused               boolean     NOT NULL DEFAULT false,
    paused_seconds       double precision NOT NULL DEFAULT 0,
    paused_customer_seconds    double precision NOT NULL DEFAULT 0,
    paused_third_party_seconds double precision NOT NULL DEFAULT 0,
    handoffs             integer     NOT NULL DEFAULT 0,
    reopen_count         integer     NOT NULL DEFAULT 0,
    escalation_requests  integer     NOT NULL DEFAULT 0,
    declined_requests    integer     NOT NULL DEFAULT 0,
    customer_rejections  integer     NOT NULL DEFAULT 0,
    compensation_paid    numeric     NOT NULL DEFAULT 0,
    satisfaction         integer,
    root_cause           text,
    state                jsonb       NOT NULL,
    last_event_at        timestamptz NOT NULL
);
CREATE INDEX case_list_open_by_deadline ON case_list (next_deadline_at)
    WHERE status IN ('open', 'in_progress', 'resolution_proposed');
CREATE INDEX case_list_by_customer ON case_list (customer_id, opened_at);
CREATE INDEX case_list_by_owner ON case_list (owner, next_deadline_at);
CREATE INDEX case_list_breached ON case_list (next_deadline_at) WHERE breached;

-- Every breach, for breach rates by kind and level and lateness figures.
CREATE TABLE case_breaches (
    event_id     uuid PRIMARY KEY,
    case_id      text        NOT NULL,
    kind         text        NOT NULL,
    level        integer     NOT NULL,
    due_at       timestamptz NOT NULL,
    detected_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL
);
CREATE INDEX case_breaches_by_case ON case_breaches (case_id);

-- The audit trail in words a person reads, one row per event.
CREATE TABLE audit_trail (
    position     bigint PRIMARY KEY,
    case_id      text        NOT NULL,
    version      integer     NOT NULL,
    event_id     uuid        NOT NULL,
    event_type   text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    actor_id     text        NOT NULL,
    actor_role   text        NOT NULL,
    action       text        NOT NULL,
    details      text        NOT NULL
);
CREATE INDEX audit_trail_by_case ON audit_trail (case_id, version);

-- Systemic issues: each resolution's root cause; recurring ones become issues.
CREATE TABLE root_cause_occurrences (
    event_id     uuid PRIMARY KEY,
    case_id      text        NOT NULL,
    customer_id  text        NOT NULL,
    root_cause   text        NOT NULL,
    resolved_at  timestamptz NOT NULL
);
CREATE INDEX root_cause_occurrences_by_cause ON root_cause_occurrences (root_cause, resolved_at);

CREATE TABLE systemic_cases (
    case_id        text PRIMARY KEY,
    customer_id    text        NOT NULL,
    opened_at      timestamptz NOT NULL,
    min_cases      integer     NOT NULL,
    min_customers  integer     NOT NULL,
    window_seconds double precision NOT NULL
);
CREATE INDEX systemic_cases_by_customer ON systemic_cases (customer_id, opened_at);

CREATE TABLE systemic_issues (
    root_cause     text PRIMARY KEY,
    first_detected_at timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    case_count     integer     NOT NULL,
    customer_count integer     NOT NULL,
    case_ids       text[]      NOT NULL
);

CREATE TABLE accounts_at_risk (
    customer_id    text PRIMARY KEY,
    flagged_at     timestamptz NOT NULL,
    cases_in_window integer    NOT NULL,
    case_ids       text[]      NOT NULL
);

-- Notifications to people, delivered by webhook at least once (event id = idempotency key).
-- Delivery columns are not derived from events: the outbox is never rebuilt.
CREATE TABLE notifications (
    event_id        uuid        NOT NULL,
    target          text        NOT NULL,
    case_id         text        NOT NULL,
    kind            text        NOT NULL,
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    delivered_at    timestamptz,
    PRIMARY KEY (event_id, target)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';

-- What the outbox needs to know of each case to address a notification.
CREATE TABLE notification_cases (
    case_id        text PRIMARY KEY,
    level          integer NOT NULL,
    level_targets  jsonb   NOT NULL
);
