"""Which event fields may hold personal data, and the policy section that marks them to be sealed.

Pure (no I/O, no cryptography): the store seals the marked fields of a case's events under a key per data
subject (the customer) and opens them on read (``events/personal_data.py``); erasing the subject destroys
the key, and reads then show ``ERASED`` where the text was. The stored bytes, their hashes and every proof
over them are unchanged by an erasure.

Only free texts and contact names can be sealed: identifiers, enumerations, times and amounts drive routing,
deadlines and metrics, and titles travel in notifications and read models by design (they must not carry
personal data; the API documents this).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

ERASED = "[erased]"  # what a read shows for a sealed field whose subject was erased

# event type -> the dotted paths (within the event's data) that may be sealed
SEALABLE: Mapping[str, frozenset[str]] = {
    "escalation.opened": frozenset({"description", "customer.contact"}),
    "escalation.facts_corrected": frozenset({"description"}),
    "escalation.note_added": frozenset({"text"}),
    "escalation.customer_responded": frozenset({"comment"}),
    "escalation.follow_up_completed": frozenset({"comment"}),
    "escalation.resolution_proposed": frozenset({"summary"}),
    "escalation.paused": frozenset({"note"}),
    "escalation.closed": frozenset({"note"}),
    "escalation.withdrawn": frozenset({"note"}),
}


def _field_name(entry: str) -> str:
    event_type, _, path = entry.partition(":")
    if path not in SEALABLE.get(event_type, frozenset()):
        allowed = sorted(f"{t}:{p}" for t, paths in SEALABLE.items() for p in paths)
        raise ValueError(f"{entry!r} is not a field that may hold personal data; sealable fields: {allowed}")
    return entry


class PersonalDataRules(BaseModel):
    """``[personal_data]`` in a policy: ``sealed`` lists ``event type:field path`` entries, e.g.
    ``"escalation.note_added:text"``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sealed: Annotated[list[str], Field(min_length=1)]

    @field_validator("sealed")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        return [_field_name(entry) for entry in value]


def sealed_paths(policy: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """event type -> the paths to seal, from a pinned policy's content (as an opening event holds it).
    Empty for a policy without ``[personal_data]`` (its cases' texts are stored in the clear)."""
    section = policy.get("personal_data") or {}
    paths: dict[str, list[str]] = {}
    for entry in section.get("sealed", []):
        event_type, _, path = str(entry).partition(":")
        if path in SEALABLE.get(event_type, frozenset()):
            paths.setdefault(event_type, []).append(path)
    return {event_type: tuple(sorted(p)) for event_type, p in paths.items()}
