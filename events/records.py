"""The rules of a stored event, shared by every event store: its bytes, its hash chain, its errors.

Pure (no database): ``body_for`` gives the exact bytes stored and hashed, ``chain_hash`` links them,
``link_problem`` says why a stored event does not continue its chain, ``parse_row`` turns a stored
row back into an event (``CorruptEvent`` when its bytes no longer parse).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.personal_data import open_content
from workflows.core.canonical import canonical_json
from workflows.core.events import NewEvent, RecordedEvent

ZERO_HASH = "0" * 64


class EventStoreError(Exception):
    """Base class for refusals by the event store; the message names the rule."""


class ConcurrencyConflict(EventStoreError):
    """The stream is not at the expected version, or an event id is reused elsewhere."""


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + body.encode("ascii")).hexdigest()


def check_batch(stream_id: str, expected_version: int, events: Sequence[NewEvent]) -> None:
    """``ValueError`` unless ``events`` are a consecutive run of ``stream_id``'s versions after ``expected_version``."""
    for offset, event in enumerate(events):
        if event.stream_id != stream_id:
            raise ValueError(f"event {event.event_id} belongs to {event.stream_id}, not {stream_id}")
        if event.version != expected_version + 1 + offset:
            raise ValueError(
                f"event {event.event_id} has version {event.version}; "
                f"expected {expected_version + 1 + offset} (batch must continue the stream)"
            )


def body_for(
    event: NewEvent, recorded_at: datetime, seal: Callable[[NewEvent, dict[str, Any]], dict[str, Any]] | None = None
) -> str:
    """The exact bytes stored for ``event``; ``seal`` replaces its personal fields with sealed envelopes first."""
    content = event.model_dump(mode="json")
    content["recorded_at"] = recorded_at.isoformat()
    if seal is not None:
        content = seal(event, content)
    return canonical_json(content)


class CorruptEvent(EventStoreError):
    """A stored event's bytes no longer parse as an event (they were altered, or written by a bug).

    Readers report it with the stream and version; ``verify_stream`` reports the same event as a
    chain break, since its hash no longer matches the stored bytes either."""

    def __init__(self, stream_id: str, version: int, position: int, problem: str) -> None:
        super().__init__(
            f'rule "store.corrupt_event": {stream_id} version {version} (position {position}) does not parse '
            f"as an event: {problem}; run escalations verify"
        )
        self.stream_id, self.version, self.position = stream_id, version, position


def parse_row(row: Mapping[str, Any], keys: Mapping[str, bytes | None] | None = None) -> RecordedEvent:
    """The event a stored row holds, its sealed fields opened with ``keys`` (key id -> key, None: erased; a
    sealed field whose key is not given reads as erased); ``CorruptEvent`` if its bytes no longer parse into
    one, or a sealed field does not open under its key."""
    body = row["body"]
    try:
        if body.endswith("}") and '{"sealed":' not in body:
            # Nothing to open: the row's own fields are spliced onto the object's end (after the body's, so
            # they win over any the bytes claim, as ``update`` does below) and pydantic parses the JSON itself,
            # about a third faster than ``json.loads`` then validating the dict. Readers and rebuilds parse
            # every event this way.
            position, prev_hash, row_hash = int(row["position"]), json.dumps(row["prev_hash"]), json.dumps(row["hash"])
            own = f',"position":{position},"prev_hash":{prev_hash},"hash":{row_hash}}}'
            return RecordedEvent.model_validate_json(body[:-1] + own)
        content = json.loads(body)
        if '{"sealed":' in body:
            content = open_content(content, keys or {})
        content.update(position=row["position"], prev_hash=row["prev_hash"], hash=row["hash"])
        return RecordedEvent.model_validate(content)
    except (ValueError, TypeError, AttributeError) as exc:  # pydantic's ValidationError is a ValueError
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptEvent(row["stream_id"], row["version"], row["position"], first_line) from None


def recorded_as_made(event: NewEvent, row: Mapping[str, Any], recorded_at: datetime) -> RecordedEvent:
    """The event ``row`` holds, when its body is the very bytes ``body_for(event, recorded_at, ...)`` made: the
    event itself with the row's place in the record, without parsing the bytes back.

    Only for a row whose stored body equals the body just made (the caller compares them): parsing those bytes
    gives this event again, since the body is the event's JSON and a sealed field opens to the text it
    sealed (tests/test_recorded_as_made.py holds the two equal for every kind of event, sealed or not).
    An append returns its events this way: parsing them back was half of its own time."""
    return RecordedEvent.model_construct(
        **dict(event), position=row["position"], recorded_at=recorded_at, prev_hash=row["prev_hash"], hash=row["hash"]
    )


@dataclass(frozen=True)
class StoredRow:
    """An event exactly as the table holds it: ``body`` is the hashed bytes (ASCII canonical JSON)."""

    position: int
    stream_id: str
    version: int
    body: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainBreak:
    stream_id: str
    version: int
    position: int
    reason: str


def link_problem(
    version: int, body: str, prev_hash: str, stored_hash: str, expected_version: int, expected_prev: str
) -> str | None:
    """Why a stored event does not continue its chain, or None when it does."""
    if version != expected_version:
        return f"gap: expected version {expected_version}"
    if prev_hash != expected_prev:
        return "prev_hash is not the previous hash"
    if chain_hash(prev_hash, body) != stored_hash:
        return "hash does not match the stored bytes"
    return None
