"""Request and response bodies. Command bodies are the domain commands minus what the API supplies
(the actor comes from the token, the idempotency key from the header)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from workflows.core.case_view import CaseView
from workflows.core.commands import COMMAND_CLASSES, SPECS, Command
from workflows.core.events import CaseId, EarlyWarningSignal, Identifier, RecordedEvent, ShortText
from workflows.core.vocabulary import CustomerTier, SignalKind

_SUPPLIED = {"actor", "idempotency_key", "command"}

# Route segment -> command name, as each command declares it.
COMMAND_ROUTES: dict[str, str] = {spec.route: name for name, spec in SPECS.items()}


def body_model(command_class: type[Command]) -> type[BaseModel]:
    """The request body of ``command_class``: its own fields, unknown fields refused."""
    fields: dict[str, Any] = {
        name: (field.annotation, field) for name, field in command_class.model_fields.items() if name not in _SUPPLIED
    }
    return create_model(f"{command_class.__name__}Body", __config__=ConfigDict(extra="forbid", frozen=True), **fields)


BODY_MODELS: dict[str, type[BaseModel]] = {name: body_model(COMMAND_CLASSES[name]) for name in COMMAND_CLASSES}


class OpenBody(BODY_MODELS["open"]):  # type: ignore[misc, valid-type]
    """A case to open. Without ``case_id`` one is derived from the Idempotency-Key (or generated)."""

    case_id: CaseId | None = None


BODY_MODELS["open"] = OpenBody


class CommandReply(BaseModel):
    """The events a command stored (the original ones, also for a repeated command) and the case after."""

    duplicate: bool = Field(description="true when the command's idempotency key had been seen before")
    events: list[RecordedEvent]
    state: CaseView
    warnings: list[str] = Field(
        default=[], description="allowed but worth knowing, each naming its rule (assign.outside_working_hours)"
    )


class CasePage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class SignalBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SignalKind
    value: float = Field(allow_inf_nan=False)
    detail: ShortText | None = None
    customer_name: ShortText | None = Field(None, description="used if the signal opens a proactive case")
    customer_tier: CustomerTier | None = Field(
        None, description="used if the signal opens a proactive case for a customer with no stored account (standard)"
    )


class SignalReply(BaseModel):
    outcome: str = Field(description="opened | attached | below_threshold")
    case_id: Identifier | None
    signal: EarlyWarningSignal
