"""How routes answer: JSON bodies, with the models' own serialisation where there is a model."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel

from api.errors import Problem
from api.models import CommandReply
from api.services import Outcome
from observability import metrics


def json_response(model: BaseModel | Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = model.model_dump_json() if isinstance(model, BaseModel) else json.dumps(model, default=str)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def reply(outcome: Outcome, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = CommandReply(
        duplicate=outcome.duplicate, events=outcome.events, state=outcome.state, warnings=outcome.warnings
    )
    return json_response(body, status, headers)


async def counted(command: str, outcome: Awaitable[Response]) -> Response:
    """Await a command's reply, counting it (``escalations_commands_total``) as accepted, or as refused by
    the rule its problem names (``http.<status>`` for one that names none)."""
    try:
        response = await outcome
    except Problem as problem:
        metrics.record_command(command, problem.rule or f"http.{problem.status}")
        raise
    metrics.record_command(command, None)
    return response
