-- The directory: people, teams, accounts (customer master data) and category directors, as validated JSON
-- documents (workflows/core/directory.py says what a valid one is), and the log of every change to it
-- with its actor, so an auditor can see who belonged to which team when.
CREATE TABLE directory_entries (
    kind        text NOT NULL CHECK (kind IN ('people', 'teams', 'accounts', 'directors')),
    id          text NOT NULL,
    doc         jsonb NOT NULL,
    changed_seq bigint NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE TABLE directory_changes (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id    text NOT NULL CHECK (actor_id <> ''),
    actor_role  text NOT NULL,
    kind        text NOT NULL,
    id          text NOT NULL,
    doc         jsonb,               -- the entry after the change; NULL: removed
    reason      text NOT NULL DEFAULT ''
);
CREATE INDEX directory_changes_by_entry ON directory_changes (kind, id, seq);

CREATE FUNCTION directory_changes_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'directory_changes is append-only';
END
$$;
CREATE TRIGGER directory_changes_no_update_or_delete BEFORE UPDATE OR DELETE ON directory_changes
    FOR EACH ROW EXECUTE FUNCTION directory_changes_refuse_change();
CREATE TRIGGER directory_changes_no_truncate BEFORE TRUNCATE ON directory_changes
    FOR EACH STATEMENT EXECUTE FUNCTION directory_changes_refuse_change();

-- The services write the directory; its history they only read and append to.
REVOKE ALL ON directory_changes FROM escalations_app;
GRANT SELECT, INSERT ON directory_changes TO escalations_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON directory_entries TO escalations_app;

-- The case list knows each case's team (queues) and its customer's annual value (value at risk).
-- Rows projected before this migration get them at their next event, or from `escalations rebuild case_list`.
ALTER TABLE case_list ADD COLUMN team text;
ALTER TABLE case_list ADD COLUMN annual_value numeric NOT NULL DEFAULT 0;
CREATE INDEX case_list_by_team ON case_list (team, next_deadline_at);
