"""Every command and every event type is whole: nothing declared in one place is missing in another.

The commands are enumerated from the ``Command`` class hierarchy and the event types from the
``EventData`` union, never from the registry under test, so a command class written without its
declaration, or an event type without its ``evolve`` arm or audit wording, fails here instead of
as a ``KeyError`` at run time or a command silently dropped from ``policy simulate``.
"""

from __future__ import annotations

import ast
import inspect
import typing
from collections.abc import Mapping
from pathlib import Path

import pytest

from api.app import create_app
from projections import audit_trail
from workflows import escalation_workflow
from workflows.core import evolve
from workflows.core.command_registry import Command, CommandSpec
from workflows.core.commands import PERMISSIONS, SPECS, OpenEscalation
from workflows.core.events import EventData


def command_classes() -> list[type[Command]]:
    found, todo = [], list(Command.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted({c for c in found if "command" in c.model_fields}, key=lambda c: c.__name__)


def event_types() -> list[type]:
    union = typing.get_args(EventData)[0]
    return sorted(typing.get_args(union), key=lambda c: c.__name__)


def case_arms(function: object) -> set[str]:
    """The class names a function's ``match`` statements have a ``case Name(...)`` arm for."""
    tree = ast.parse(inspect.getsource(function))  # type: ignore[arg-type]
    return {
        node.cls.id for node in ast.walk(tree) if isinstance(node, ast.MatchClass) and isinstance(node.cls, ast.Name)
    }


def api_command_routes() -> set[str]:
    app = create_app(lambda: None)  # never started: only its schema is read
    prefix = "/v1/escalations/{case_id}/"
    return {
        path.removeprefix(prefix)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(prefix) and "post" in operations
    }


def missing_parts(
    classes: list[type[Command]],
    specs: Mapping[str, CommandSpec],
    permissions: Mapping[str, frozenset],
    routes: set[str],
    updates: tuple[str, ...],
    events: list[type],
    evolve_arms: set[str],
    audit_arms: set[str],
) -> list[str]:
    problems = []
    for cls in classes:
        name = cls.command_name()
        if cls is OpenEscalation:
            if not permissions.get("open"):
                problems.append("open: no permission entry")
            continue
        spec = specs.get(name)
        if spec is None or spec.command is not cls:
            problems.append(f"{name}: no declaration (command_registry.register)")
            continue
        if not callable(spec.handler):
            problems.append(f"{name}: no handler")
        if spec.guard is None or not callable(spec.guard):
            problems.append(f"{name}: no guard (use no_guard when the case's state does not matter)")
        if not permissions.get(name):
            problems.append(f"{name}: no permission entry")
        if spec.route not in routes:
            problems.append(f"{name}: no API route {spec.route!r}")
        if name not in updates:
            problems.append(f"{name}: not an update of the workflow")
        if spec.replay is None and not spec.not_replayed:
            problems.append(f"{name}: no shadow-run mapping")
        if spec.recorded_by not in events:
            problems.append(f"{name}: records itself with {spec.recorded_by!r}, not an event type")
    for event in events:
        if event.__name__ not in evolve_arms:
            problems.append(f"{event.__name__}: no evolve arm")
        if event.__name__ not in audit_arms:
            problems.append(f"{event.__name__}: no audit description")
    return problems


EVOLVE_ARMS = case_arms(evolve._apply) | {"Opened"}  # the opening builds the state in evolve() itself
AUDIT_ARMS = case_arms(audit_trail.describe)


def test_every_command_and_event_type_is_whole() -> None:
    problems = missing_parts(
        command_classes(),
        SPECS,
        PERMISSIONS,
        api_command_routes(),
        escalation_workflow.UPDATES,
        event_types(),
        EVOLVE_ARMS,
        AUDIT_ARMS,
    )
    assert problems == []


def test_the_enumerations_see_the_whole_language() -> None:
    assert len(command_classes()) == len(SPECS) + 1 >= 21
    assert len(event_types()) >= 25
    assert len({spec.route for spec in SPECS.values()}) == len(SPECS), "two commands share a route"


@pytest.mark.parametrize(
    "broken, expected",
    [
        ("no declaration", "acknowledge: no declaration (command_registry.register)"),
        ("no guard", "acknowledge: no guard (use no_guard when the case's state does not matter)"),
        ("no permission", "acknowledge: no permission entry"),
        ("no route", "acknowledge: no API route 'acknowledge'"),
        ("no update", "acknowledge: not an update of the workflow"),
        ("no simulation", "acknowledge: no shadow-run mapping"),
        ("no evolve arm", "Acknowledged: no evolve arm"),
        ("no audit wording", "Acknowledged: no audit description"),
    ],
)
def test_the_completeness_check_can_fail(broken: str, expected: str) -> None:
    import dataclasses

    specs = dict(SPECS)
    permissions = dict(PERMISSIONS)
    routes = api_command_routes()
    updates = escalation_workflow.UPDATES
    evolve_arms, audit_arms = set(EVOLVE_ARMS), set(AUDIT_ARMS)
    if broken == "no declaration":
        del specs["acknowledge"]
    elif broken == "no guard":
        specs["acknowledge"] = dataclasses.replace(specs["acknowledge"], guard=None)
    elif broken == "no permission":
        del permissions["acknowledge"]
    elif broken == "no route":
        routes.discard("acknowledge")
    elif broken == "no update":
        updates = tuple(u for u in updates if u != "acknowledge")
    elif broken == "no simulation":
        specs["acknowledge"] = dataclasses.replace(specs["acknowledge"], replay=None)
    elif broken == "no evolve arm":
        evolve_arms.discard("Acknowledged")
    elif broken == "no audit wording":
        audit_arms.discard("Acknowledged")
    problems = missing_parts(
        command_classes(), specs, permissions, routes, updates, event_types(), evolve_arms, audit_arms
    )
    assert problems == [expected]


def test_the_readme_names_every_route() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [spec.route for spec in SPECS.values() if spec.route not in readme]
    assert missing == []
