-- Appends in one round trip, several at once (for event append throughput; bench/ measures it).
-- The lookups are planned at each call (EXECUTE), the chain is hashed in a loop
-- of expressions and each request's events go in as one INSERT.
--
-- Appends are serialised by a transaction-scoped advisory lock (invariant 4 of docs/architecture.md,
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
) LANGUAGE plpgsql AS $$
DECLARE
    requests integer := cardinality(p_streams);
    start_at integer := 1;  -- where request r's events start in the flattened arrays
    n integer;
    head_version integer;
    prev text;
    prevs text[];
    hashes text[];
    stored_any boolean := false;
    already_stored boolean;
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
        n := p_counts[r];
        BEGIN
            -- The two lookups are planned at each call (EXECUTE): a plan cached
            -- while the table was empty scanned the whole table once it had grown
            -- (found by tests/test_metrics.py, whose appends slowed to a crawl).
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY ($1))'
                INTO already_stored USING p_ids[start_at : start_at + n - 1];
            IF already_stored THEN
                RETURN QUERY EXECUTE
                    'SELECT $1, ''existing'', NULL::text, e.position, e.stream_id, e.version, e.event_id, e.body,
                            e.prev_hash::text, e.hash::text
                       FROM events e WHERE e.event_id = ANY ($2) ORDER BY e.position'
                    USING r, p_ids[start_at : start_at + n - 1];
            ELSE
                EXECUTE 'SELECT e.version, e.hash FROM events e WHERE e.stream_id = $1 ORDER BY e.version DESC LIMIT 1'
                    INTO head_version, prev USING p_streams[r];
                IF head_version IS NULL THEN
                    head_version := 0;
                    prev := repeat('0', 64);
                END IF;
                IF head_version <> p_expected[r] THEN
                    RETURN QUERY SELECT r, 'conflict',
                        format('event store rule "expected version": stream %s is at version %s, the append expected %s',
                               p_streams[r], head_version, p_expected[r]),
                        NULL::bigint, NULL::text, NULL::integer, NULL::uuid, NULL::text, NULL::text, NULL::text;
                ELSE
                    prevs := '{}';
                    hashes := '{}';
                    FOR i IN 0 .. n - 1 LOOP
                        prevs := prevs || prev;
                        prev := encode(sha256(decode(prev, 'hex') || convert_to(p_bodies[start_at + i], 'UTF8')), 'hex');
                        hashes := hashes || prev;
                    END LOOP;
                    RETURN QUERY
                        WITH inserted AS (
                            INSERT INTO events (stream_id, version, event_id, event_type, body, prev_hash, hash, recorded_at)
                            SELECT p_streams[r], p_expected[r] + x.ord::integer, x.id, x.t, x.b, x.p, x.h, p_recorded_at[r]
                              FROM unnest(p_ids[start_at : start_at + n - 1], p_types[start_at : start_at + n - 1],
                                          p_bodies[start_at : start_at + n - 1], prevs, hashes)
                                   WITH ORDINALITY AS x(id, t, b, p, h, ord)
                             ORDER BY x.ord
                            RETURNING *)
                        SELECT r, 'stored', NULL::text, i.position, i.stream_id, i.version, i.event_id, i.body,
                               i.prev_hash::text, i.hash::text
                          FROM inserted i ORDER BY i.version;
                    stored_any := true;
                END IF;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT r, 'error', SQLSTATE || ': ' || SQLERRM,
                NULL::bigint, NULL::text, NULL::integer, NULL::uuid, NULL::text, NULL::text, NULL::text;
        END;
        start_at := start_at + n;
    END LOOP;
    IF stored_any THEN
        -- We hold the append lock: the sequence's last value here is the newest position.
        PERFORM pg_notify('escalation_events', currval(pg_get_serial_sequence('events', 'position'))::text);
    END IF;
END $$;
