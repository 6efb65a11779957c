-- Every policy a case was opened under, by the sha256 of its canonical content. A case's workflow history
-- names its policy by that hash only (the opening's reference, activities/policy_library.py), so a worker that
-- replays a case it did not open finds the content here. Content-addressed: a row is written once, by the
-- first opening under that policy, and never changes; the case's opening event keeps the full content too
-- (the record), so the event store alone still replays and audits every case.
CREATE TABLE pinned_policies (
    content_hash  text PRIMARY KEY CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    content       text NOT NULL,          -- canonical JSON of the resolved policy
    pinned_at     timestamptz NOT NULL DEFAULT now()
);

-- Pins are history: the services may read and add, never rewrite.
REVOKE ALL ON pinned_policies FROM escalations_app;
GRANT SELECT, INSERT ON pinned_policies TO escalations_app;
