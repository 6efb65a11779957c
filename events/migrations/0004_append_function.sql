-- One round trip per append (issue 5: event append throughput).
--
-- Appends are serialised by a transaction-scoped advisory lock (invariant 4,
-- see 0001). Done from the client, the lock was held across five round trips
-- (lock, idempotency probe, head, insert, notify) and the commit; done here it
-- is held only while the server runs this function and commits.
--
-- Contract (events/store.py relies on it):
-- * When any of p_ids is already stored, nothing is written and the stored
--   rows with those ids are returned: the caller checks that the whole batch is
--   there at the same stream and versions (an idempotent re-append) or refuses.
-- * Otherwise the stream's head must be p_expected, else SQLSTATE ES409.
-- * hash = sha256(prev_hash bytes || body bytes), as chain_hash() in Python;
--   the bodies are ASCII (canonical JSON), so their UTF-8 bytes are their ASCII bytes.
-- * The rows are inserted at versions p_expected + 1 .. and returned in version
--   order; listeners on escalation_events get the last position.
-- The triggers of 0001 still check every row, whoever inserts it.

CREATE FUNCTION append_events(
    p_stream text,
    p_expected integer,
    p_ids uuid[],
    p_types text[],
    p_bodies text[],
    p_recorded_at timestamptz
) RETURNS SETOF events LANGUAGE plpgsql AS $$
DECLARE
    head_version integer;
    prev text;
    stored events;
BEGIN
    IF cardinality(p_ids) = 0 OR cardinality(p_ids) <> cardinality(p_types)
       OR cardinality(p_ids) <> cardinality(p_bodies) THEN
        RAISE EXCEPTION 'event store rule "batch shape": ids, types and bodies must be non-empty and of one length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(7310295881460248676);  -- "esc_appd", as _APPEND_LOCK_KEY in store.py

    IF EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY (p_ids)) THEN
        RETURN QUERY SELECT * FROM events e WHERE e.event_id = ANY (p_ids) ORDER BY e.position;
        RETURN;
    END IF;

    SELECT e.version, e.hash INTO head_version, prev
      FROM events e WHERE e.stream_id = p_stream ORDER BY e.version DESC LIMIT 1;
    IF NOT FOUND THEN
        head_version := 0;
        prev := repeat('0', 64);
    END IF;
    IF head_version <> p_expected THEN
        RAISE EXCEPTION 'event store rule "expected version": stream % is at version %, the append expected %',
            p_stream, head_version, p_expected
            USING ERRCODE = 'ES409';
    END IF;

    FOR i IN 1 .. cardinality(p_ids) LOOP
        INSERT INTO events (stream_id, version, event_id, event_type, body, prev_hash, hash, recorded_at)
        VALUES (p_stream, p_expected + i, p_ids[i], p_types[i], p_bodies[i], prev,
                encode(sha256(decode(prev, 'hex') || convert_to(p_bodies[i], 'UTF8')), 'hex'), p_recorded_at)
        RETURNING * INTO stored;
        prev := stored.hash;
        RETURN NEXT stored;
    END LOOP;
    PERFORM pg_notify('escalation_events', stored.position::text);
END $$;
