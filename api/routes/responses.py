"""How routes answer: JSON bodies, with the models' own serialisation where there is a model."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel

from api.models import CommandReply
from api.services import Outcome


def json_response(model: BaseModel | Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = model.model_dump_json() if isinstance(model, BaseModel) else json.dumps(model, default=str)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def reply(outcome: Outcome, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = CommandReply(
        duplicate=outcome.duplicate, events=outcome.events, state=outcome.state, warnings=outcome.warnings
    )
    return json_response(body, status, headers)
