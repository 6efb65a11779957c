"""Reading a policy from a file: the adapter between policy files and the pure policy model.

TOML (``.toml``) or JSON (``.json``, e.g. a pinned policy's content). Calendars named in the
file are resolved here (time-zone bytes from the pinned ``tzdata``, holidays expanded to
dates), so the ``Policy`` that comes out carries everything its deadlines need.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pydantic import ValidationError

from workflows.calendar_source import resolve_calendar
from workflows.core.policy import Policy


class PolicyError(ValueError):
    """The policy file is missing, not TOML, or breaks a policy rule (message says which)."""


def load_policy(path: Path) -> Policy:
    """Read a policy from TOML (``.toml``) or JSON (``.json``, e.g. a pinned policy's content)."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except FileNotFoundError as exc:
        raise PolicyError(f"policy file {path} does not exist") from exc
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise PolicyError(
            f"policy file {path} is not valid {path.suffix.lstrip('.').upper() or 'TOML'}: {exc}"
        ) from exc
    try:
        calendars = raw.get("calendars", {})
        if isinstance(calendars, dict):
            raw["calendars"] = {name: resolve_calendar(name, spec) for name, spec in calendars.items()}
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"policy file {path} is invalid: {exc}") from exc
    except ValueError as exc:
        raise PolicyError(f"policy file {path} is invalid: {exc}") from exc


DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "policies" / "default.toml"
