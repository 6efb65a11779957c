"""The workflow's messages: its input and its reply to a command.

They live outside ``escalation_workflow.py`` on purpose: the sandbox re-executes the
workflow's own module for every new workflow instance, and defining pydantic models
there rebuilt these classes each time (a profile of the worker under load showed it).
Imported through the sandbox's pass-through, they are built once per process.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from workflows.core.case_view import CaseView
from workflows.core.commands import OpenEscalation
from workflows.core.events import RecordedEvent
from workflows.core.state import EscalationState

# See ``WorkflowInput.max_events_per_run``; a case opened with a longer run takes this at continue-as-new.
MAX_EVENTS_PER_RUN = 200


class WorkflowInput(BaseModel):
    """Either a case to open, or the state carried over by continue-as-new."""

    model_config = ConfigDict(frozen=True)

    open: OpenEscalation | None = None
    carried: EscalationState | None = None
    # Continue-as-new after this many events in one run (in addition to Temporal's own suggestion, which
    # comes at about 450 commands); small values let tests force it. A worker that takes a case over
    # (its own died) replays the whole run inside one workflow task, which times out after 4 s: a run of
    # 200 one-event commands (1,600 history events) replayed in 1.3 s on a loaded 2-core machine.
    # A running case keeps the value it was opened with.
    max_events_per_run: int = MAX_EVENTS_PER_RUN


class CommandResult(BaseModel):
    """The reply to a command: the events it stored and the case after them (its view: no policy).

    ``duplicate`` is true when the idempotency key was seen before; then
    ``events`` is empty and ``versions`` lists the versions the first delivery
    stored.
    """

    model_config = ConfigDict(frozen=True)

    duplicate: bool
    versions: list[int]
    events: list[RecordedEvent]
    state: CaseView
