"""An append returns its events built from what it was given, not parsed back from the bytes it stored
(``events.records.recorded_as_made``): what it returns must be exactly what a reader parses from the record."""

from __future__ import annotations

import random

import asyncpg

from events.store import EventStore
from samples.histories import generate_case
from workflows.core.canonical import canonical_json


async def test_an_append_returns_what_a_reader_parses_for_every_kind_of_event(
    own_db: tuple[asyncpg.Pool, str],
) -> None:
    store = EventStore(own_db[0])  # a database of its own: the generated cases must not meet the suite's
    rng = random.Random(11)
    histories = [generate_case(rng, i) for i in range(60)]
    kinds: set[str] = set()
    sealed = 0
    for history in histories:
        stream = history[0].stream_id
        # In two appends, so the second continues a stream whose opening (and sealing) is stored already.
        half = max(1, len(history) // 2)
        returned = await store.append(stream, 0, history[:half])
        returned += await store.append(stream, half, history[half:])
        # Built from the events given, not parsed back: the very payload objects (a parse makes new ones).
        assert all(r.data is e.data for r, e in zip(returned, history, strict=True))
        read = await store.read_stream(stream)
        assert returned == read
        # The same content: a dict's keys may come in another order (the stored bytes sort them).
        assert [canonical_json(e.model_dump(mode="json")) for e in returned] == [
            canonical_json(e.model_dump(mode="json")) for e in read
        ]
        assert [type(e.data) for e in returned] == [type(e.data) for e in read]
        kinds |= {e.type for e in returned}
        sealed += sum('{"sealed":' in row.body for row in await store.read_stored(stream))
        # A re-append of the same batch is answered with the rows stored then (parsed: their bodies are not
        # the ones this call made, which carry a later stamp), and they read the same.
        assert await store.append(stream, 0, history[:half]) == returned[:half]
    assert sealed, "no sealed field in the generated histories: the sealed path went untested"
    assert len(kinds) >= 10, f"too few kinds of event to mean anything: {sorted(kinds)}"
