-- Notifications to people: one delivery per (event, recipient, channel), each with its own id (the
-- idempotency key the channel sees), retried with backoff until delivered or dead (a dead letter, shown
-- and re-driven by hand). The deliverer leases rows in short transactions and sends outside them.
CREATE TABLE deliveries (
    id              uuid PRIMARY KEY,
    event_id        uuid        NOT NULL,
    case_id         text        NOT NULL,
    kind            text        NOT NULL,            -- what happened (case_opened, breach, ...)
    recipient       text        NOT NULL,            -- a person id, team:<id> (a team's chat) or webhook:<name>
    channel         text        NOT NULL CHECK (channel IN ('email', 'chat', 'inbox', 'webhook')),
    address         text,                            -- the email address, chat channel or webhook name used
    priority        text        NOT NULL,
    message         jsonb       NOT NULL,            -- subject, text, facts
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    give_up_at      timestamptz NOT NULL,            -- still failing after this: a dead letter
    lease_until     timestamptz,
    delivered_at    timestamptz,
    last_error      text,
    UNIQUE (event_id, recipient, channel)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_dead ON deliveries (created_at) WHERE status = 'dead';

-- Every attempt: when, how it ended, why it failed.
CREATE TABLE delivery_attempts (
    delivery_id uuid        NOT NULL REFERENCES deliveries (id),
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('delivered', 'failed', 'not_configured', 'dead', 'redriven')),
    error       text,
    PRIMARY KEY (delivery_id, attempt)
);

-- The in-product inbox: a notification per person, always delivered.
CREATE TABLE inbox (
    delivery_id uuid PRIMARY KEY REFERENCES deliveries (id),
    person      text        NOT NULL,
    case_id     text        NOT NULL,
    kind        text        NOT NULL,
    subject     text        NOT NULL,
    text        text        NOT NULL,
    created_at  timestamptz NOT NULL,
    read_at     timestamptz
);
CREATE INDEX inbox_by_person ON inbox (person, created_at DESC);

-- Acknowledgement links are single-use: a link's nonce is recorded when it is first used.
CREATE TABLE ack_link_uses (
    nonce     text PRIMARY KEY,
    case_id   text        NOT NULL,
    person    text        NOT NULL,
    used_at   timestamptz NOT NULL DEFAULT now(),
    outcome   text        NOT NULL
);

-- Executive digests, as composed by the schedule (the API can also compose one on demand).
CREATE TABLE executive_digests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    composed_at  timestamptz NOT NULL UNIQUE,      -- the scheduled instant: a retried run adds nothing
    period_start timestamptz NOT NULL,
    digest       jsonb       NOT NULL
);

-- What the outbox keeps of each case to address its notifications: the case's facts as its events left
-- them, the pinned policy's notification rules and its levels (cases opened before this migration keep
-- their webhook targets only).
ALTER TABLE notification_cases ADD COLUMN snapshot jsonb;
ALTER TABLE notification_cases ADD COLUMN rules jsonb;
ALTER TABLE notification_cases ADD COLUMN levels jsonb;
