"""Small builders shared by tests. Every id is unique per call."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from workflows.core.commands import OpenEscalation
from workflows.core.decide import decide_open, envelopes
from workflows.core.events import Actor, NewEvent, NoteAdded, case_event_id, stream_id_for
from workflows.core.policy import Policy
from workflows.core.vocabulary import NoteVisibility, Role

ALICE = Actor(id="alice", role=Role.AGENT)


def unique_case_id(prefix: str = "case") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def note_events(stream_id: str, count: int, start_version: int = 1, text: str = "note") -> list[NewEvent]:
    return [
        NewEvent(
            event_id=uuid.uuid4(),
            stream_id=stream_id,
            version=start_version + i,
            occurred_at=datetime.now(UTC),
            actor=ALICE,
            data=NoteAdded(visibility=NoteVisibility.INTERNAL, text=f"{text} {start_version + i}"),
        )
        for i in range(count)
    ]


def opening_events(opening: OpenEscalation, policy: Policy) -> list[NewEvent]:
    """The events ``opening`` stores at version 1 of its case's stream, as its workflow would send them."""
    stream = stream_id_for(opening.case_id)
    return envelopes(
        stream,
        0,
        decide_open(opening, policy),
        actor=opening.actor,
        now=datetime.now(UTC),
        ids=[case_event_id(stream, 1)],
        command_key=opening.idempotency_key,
    )
