-- HTTP API state: bearer tokens (hashes only), idempotent replies, early-warning signals.

CREATE TABLE api_tokens (
    token_hash  char(64) PRIMARY KEY,      -- sha256 of the token; the token itself is never stored
    name        text        NOT NULL UNIQUE,
    role        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- One row per (caller, Idempotency-Key): the reply to replay, and the request it answered.
CREATE TABLE api_idempotency (
    principal    text        NOT NULL,
    key          text        NOT NULL,
    fingerprint  char(64)    NOT NULL,     -- sha256 of method, path and canonical body
    status       integer     NOT NULL,
    headers      jsonb       NOT NULL,
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);

-- Every early-warning signal received, and the one open proactive case per account.
CREATE TABLE account_signals (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  text        NOT NULL,
    kind         text        NOT NULL,
    value        double precision NOT NULL,
    detail       text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    received_by  text        NOT NULL,
    outcome      text        NOT NULL,     -- opened | attached | below_threshold
    case_id      text
);
CREATE INDEX account_signals_by_customer ON account_signals (customer_id, received_at);

CREATE TABLE proactive_cases (
    customer_id  text PRIMARY KEY,
    case_id      text        NOT NULL,
    opened_at    timestamptz NOT NULL DEFAULT now()
);
