-- The event store: the business record (invariant 1 of docs/architecture.md).
--
-- Appends are serialised by a transaction-scoped advisory lock taken in
-- events/store.py, so global positions are assigned and committed in the same
-- order: a reader that follows `position` can never skip an event that a
-- concurrent writer commits late (invariant 4 of docs/architecture.md).

CREATE TABLE events (
    position     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id    text        NOT NULL,
    version      integer     NOT NULL CHECK (version >= 1),
    event_id     uuid        NOT NULL UNIQUE,
    event_type   text        NOT NULL,
    -- The exact bytes covered by `hash`; jsonb would reorder keys, so the
    -- canonical JSON text is stored as written and hashed as stored.
    body         text        NOT NULL,
    prev_hash    char(64)    NOT NULL,
    hash         char(64)    NOT NULL,
    recorded_at  timestamptz NOT NULL,
    UNIQUE (stream_id, version)
);

-- Gapless versions and an unbroken chain, enforced by the database itself so
-- no writer (ours or a hand-typed INSERT) can leave a hole or fork a chain.
CREATE FUNCTION events_check_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head record;
BEGIN
    SELECT version, hash INTO head FROM events
     WHERE stream_id = NEW.stream_id ORDER BY version DESC LIMIT 1;
    IF head IS NULL THEN
        IF NEW.version <> 1 OR NEW.prev_hash <> repeat('0', 64) THEN
            RAISE EXCEPTION 'event store rule "gapless versions": stream % must start at version 1 with the zero hash', NEW.stream_id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSIF NEW.version <> head.version + 1 OR NEW.prev_hash <> head.hash THEN
        RAISE EXCEPTION 'event store rule "gapless versions": stream % is at version %, refused version % or a prev_hash that is not the head hash', NEW.stream_id, head.version, NEW.version
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER events_append_check BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_check_append();

-- Invariant 5: events are immutable. The refusal is in the database, not only
-- in our code, so a mistaken migration or a manual session cannot alter history.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event store rule "immutable events": % on events is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
