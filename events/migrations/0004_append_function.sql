-- Appends in one round trip, several at once (issue 5: event append throughput).
--
-- Appends are serialised by a transaction-scoped advisory lock (invariant 4,
-- see 0001), held until commit. Done from the client, the lock was held across
-- five round trips (lock, idempotency probe, head, insert, notify) and the
-- commit; done here it is held while the server runs this function and commits.
-- events/store.py sends every append that arrived while the previous call was
-- committing in one call (group commit), so concurrent writers share one lock
-- hold and one WAL flush instead of queueing for one each.
--
-- Contract (events/store.py relies on it). Request r owns p_counts[r] events,
-- taken in order from the flattened p_ids/p_types/p_bodies. For each request,
-- rows tagged with its number r say what happened:
-- * 'existing': some of its ids are stored already; nothing was written for it,
--   and the stored rows with those ids are returned (the caller checks that the
--   whole batch is there at the same stream and versions: an idempotent re-append).
-- * 'conflict': the stream's head is not p_expected[r]; nothing written; detail says so.
-- * 'stored': its events, inserted at versions p_expected[r] + 1 .., in order.
-- * 'error': anything else refused it (a trigger, say): nothing of it is kept
--   (its own subtransaction is rolled back; earlier 'stored' rows of it, if any,
--   are void), and the other requests are unaffected.
-- hash = sha256(prev_hash bytes || body bytes), as chain_hash() in Python; bodies
-- are ASCII (canonical JSON), so their UTF-8 bytes are their ASCII bytes.
-- Listeners on escalation_events get the last stored position.
-- The triggers of 0001 still check every row, whoever inserts it.

CREATE FUNCTION append_batch(
    p_streams text[],
    p_expected integer[],
    p_counts integer[],
    p_recorded_at timestamptz[],
    p_ids uuid[],
    p_types text[],
    p_bodies text[]
) RETURNS TABLE (
    out_request integer,
    out_outcome text,
    out_detail text,
    out_position bigint,
    out_stream_id text,
    out_version integer,
    out_event_id uuid,
    out_body text,
    out_prev_hash text,
    out_hash text
) LANGUAGE plpgsql
-- Plan each statement for the table as it is now. A plan cached while the table
-- was small (a sequential scan) was kept for the session and made every append
-- scan the whole table once it had grown (found by tests/test_metrics.py).
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    requests integer := cardinality(p_streams);
    start_at integer := 1;  -- where request r's events start in the flattened arrays
    head_version integer;
    prev text;
    stored events;
    request_last bigint;
    last_position bigint;
BEGIN
    IF requests = 0 OR cardinality(p_expected) <> requests OR cardinality(p_counts) <> requests
       OR cardinality(p_recorded_at) <> requests
       OR cardinality(p_ids) <> (SELECT sum(c) FROM unnest(p_counts) AS c)
       OR cardinality(p_types) <> cardinality(p_ids) OR cardinality(p_bodies) <> cardinality(p_ids)
       OR EXISTS (SELECT 1 FROM unnest(p_counts) AS c WHERE c < 1) THEN
        RAISE EXCEPTION 'event store rule "batch shape": one stream, version, count and time per request, and every request has events'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(7310295881460248676);  -- "esc_appd", the append lock of events/store.py

    FOR r IN 1 .. requests LOOP
        BEGIN
            IF EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY (p_ids[start_at : start_at + p_counts[r] - 1])) THEN
                RETURN QUERY
                    SELECT r, 'existing', NULL::text, e.position, e.stream_id, e.version, e.event_id, e.body,
                           e.prev_hash::text, e.hash::text
                      FROM events e WHERE e.event_id = ANY (p_ids[start_at : start_at + p_counts[r] - 1])
                     ORDER BY e.position;
            ELSE
                SELECT e.version, e.hash INTO head_version, prev
                  FROM events e WHERE e.stream_id = p_streams[r] ORDER BY e.version DESC LIMIT 1;
                IF NOT FOUND THEN
                    head_version := 0;
                    prev := repeat('0', 64);
                END IF;
                IF head_version <> p_expected[r] THEN
                    RETURN QUERY SELECT r, 'conflict',
                        format('event store rule "expected version": stream %s is at version %s, the append expected %s',
                               p_streams[r], head_version, p_expected[r]),
                        NULL::bigint, NULL::text, NULL::integer, NULL::uuid, NULL::text, NULL::text, NULL::text;
                ELSE
                    FOR i IN 0 .. p_counts[r] - 1 LOOP
                        INSERT INTO events (stream_id, version, event_id, event_type, body, prev_hash, hash, recorded_at)
                        VALUES (p_streams[r], p_expected[r] + i + 1, p_ids[start_at + i], p_types[start_at + i],
                                p_bodies[start_at + i], prev,
                                encode(sha256(decode(prev, 'hex') || convert_to(p_bodies[start_at + i], 'UTF8')), 'hex'),
                                p_recorded_at[r])
                        RETURNING * INTO stored;
                        prev := stored.hash;
                        request_last := stored.position;
                        RETURN QUERY SELECT r, 'stored', NULL::text, stored.position, stored.stream_id,
                            stored.version, stored.event_id, stored.body, stored.prev_hash::text, stored.hash::text;
                    END LOOP;
                    last_position := request_last;
                END IF;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT r, 'error', SQLSTATE || ': ' || SQLERRM,
                NULL::bigint, NULL::text, NULL::integer, NULL::uuid, NULL::text, NULL::text, NULL::text;
        END;
        start_at := start_at + p_counts[r];
    END LOOP;
    IF last_position IS NOT NULL THEN
        PERFORM pg_notify('escalation_events', last_position::text);
    END IF;
END $$;

-- The same for the per-row check of 0001, which runs inside every append.
ALTER FUNCTION events_check_append() SET plan_cache_mode = force_custom_plan;
