-- Published policy versions. New cases take the latest published version; an open
-- case moves to another only by an explicit change_policy command (its event keeps
-- the version's full content, so a case never depends on this table to replay).
CREATE TABLE policy_versions (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    content_hash  text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    label         text NOT NULL,
    content       text NOT NULL,          -- canonical JSON of the resolved policy
    author        text NOT NULL CHECK (author <> ''),
    reason        text NOT NULL CHECK (reason <> ''),
    published_at  timestamptz NOT NULL DEFAULT now()
);
-- Publishing an earlier version again adds a row: it is current again, and the list shows when.
CREATE INDEX policy_versions_by_hash ON policy_versions (content_hash, seq);

-- Versions are history: the services may read and publish, never rewrite.
REVOKE ALL ON policy_versions FROM escalations_app;
GRANT SELECT, INSERT ON policy_versions TO escalations_app;
