"""A command's reply folds only the events after its last fold of the case (api/reply_folds.py): what it
shows must be the whole stream folded afresh, also after an erasure destroyed keys a kept fold opened texts with."""

from __future__ import annotations

import random
import uuid

import asyncpg

from api.reply_folds import ReplyFolds
from events.personal_data import destroy_keys
from events.store import EventStore
from samples.histories import generate_case
from workflows.core.events import Opened
from workflows.core.evolve import fold
from workflows.core.personal_data import ERASED


async def test_a_kept_fold_brought_forward_is_the_whole_stream_folded(own_db: tuple[asyncpg.Pool, str]) -> None:
    pool, _ = own_db
    store, folds = EventStore(pool), ReplyFolds(pool)
    rng = random.Random(3)
    for index in range(12):
        history = generate_case(rng, index)
        stream = history[0].stream_id
        for at in range(0, len(history), 3):  # three events a "command"
            await store.append(stream, at, history[at : at + 3])
            events, state = await folds.read(stream, at + 1)
            assert [e.version for e in events if e.version > at] == [e.version for e in history[at : at + 3]]
            assert state == fold(await store.read_stream(stream))


async def test_a_reply_sees_events_stored_since_its_last_fold_and_a_repeat_sees_its_first_delivery(
    own_db: tuple[asyncpg.Pool, str],
) -> None:
    """Between two commands the case's timers store warnings and breaches of their own (the second read asks
    from past the kept fold); a repeated command's reply names versions behind the kept fold."""
    pool, _ = own_db
    store, folds = EventStore(pool), ReplyFolds(pool)
    history = generate_case(random.Random(5), 0)
    assert len(history) >= 6
    stream = history[0].stream_id
    await store.append(stream, 0, history[:2])
    await folds.read(stream, 1)
    await store.append(stream, 2, history[2:4])  # stored by the case itself, no reply read it
    await store.append(stream, 4, history[4:6])  # the next command's events
    events, state = await folds.read(stream, 5)
    assert state == fold(await store.read_stream(stream))
    assert [e.version for e in events if e.version >= 5] == [5, 6]
    # A repeat of the command that stored versions 3 and 4: its reply shows them, and the case at its head.
    events, state = await folds.read(stream, 3)
    assert [e.version for e in events if e.version in (3, 4)] == [3, 4]
    assert [e.event_id for e in events if e.version in (3, 4)] == [e.event_id for e in history[2:4]]
    assert state == fold(await store.read_stream(stream))


async def test_a_fold_kept_from_before_an_erasure_is_folded_afresh(own_db: tuple[asyncpg.Pool, str]) -> None:
    pool, _ = own_db
    store, folds = EventStore(pool), ReplyFolds(pool)
    history = generate_case(random.Random(4), 0)
    opening = history[0].data
    assert isinstance(opening, Opened)
    contact = opening.customer.model_copy(update={"contact": "Jane Roe"})  # a sealed field the case view shows
    history[0] = history[0].model_copy(update={"data": opening.model_copy(update={"customer": contact})})
    stream = history[0].stream_id
    await store.append(stream, 0, history[:-1])
    _, before = await folds.read(stream, 1)
    async with pool.acquire() as conn:
        subject = await conn.fetchval("SELECT subject FROM sealed_streams WHERE stream_id = $1", stream)
        assert subject is not None, "the generated case seals nothing: the test would prove nothing"
        assert await destroy_keys(conn, subject)
    await store.append(stream, len(history) - 1, history[-1:])
    events, after = await folds.read(stream, len(history))
    assert after == fold(await store.read_stream(stream))
    # What the kept fold brought forward would show: the texts as they read before the erasure.
    stale = fold([e for e in events if e.version == len(history)], before)
    assert before is not None and after is not None and stale is not None
    assert (before.customer.contact, stale.customer.contact, after.customer.contact) == ("Jane Roe", "Jane Roe", ERASED)


async def test_an_unknown_stream_folds_to_nothing(own_db: tuple[asyncpg.Pool, str]) -> None:
    pool, _ = own_db
    assert await ReplyFolds(pool).read(f"escalation-none-{uuid.uuid4().hex}", 1) == ([], None)
