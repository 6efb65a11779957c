"""Small builders shared by tests. Every id is unique per call."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from workflows.core.events import Actor, NewEvent, NoteAdded
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
