"""Import boundaries that keep the core pure and the workflow deterministic (invariant 7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def modules_loaded_by(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(done.stdout.split())


@pytest.mark.parametrize("module", ["workflows.decide", "workflows.evolve", "workflows.policy", "workflows.state"])
def test_the_domain_core_imports_neither_temporal_nor_io(module: str) -> None:
    loaded = modules_loaded_by(module)
    forbidden = {m for m in loaded if m.split(".")[0] in {"temporalio", "asyncpg", "structlog"}}
    assert not forbidden and not {"events.store", "events.database"} & loaded


def test_workflow_code_does_not_import_the_database_driver() -> None:
    loaded = modules_loaded_by("workflows.escalation_workflow")
    assert "asyncpg" not in loaded and "events.store" not in loaded


# Production workers run without Temporal's sandbox (README "Tuning"), so the
# calls it would trap are also refused here, statically, in every module the
# workflow executes. The suite's own workers stay sandboxed as a second net.
WORKFLOW_CODE = [
    "workflows/escalation_workflow.py",
    "workflows/decide.py",
    "workflows/evolve.py",
    "workflows/state.py",
    "workflows/policy.py",
    "workflows/commands.py",
    "workflows/permissions.py",
    "workflows/messages.py",
    "events/models.py",
    "events/canonical.py",
]
NON_DETERMINISTIC_CALLS = {
    "now",  # datetime.now / datetime.utcnow: use workflow.now() or the `now` argument
    "utcnow",
    "today",
    "time",  # time.time
    "monotonic",
    "perf_counter",
    "uuid1",
    "uuid4",  # uuid.uuid4: use workflow.uuid4()
    "random",
    "randint",
    "choice",
    "shuffle",
    "urandom",
    "getenv",
    "sleep",  # time.sleep / asyncio.sleep: use workflow.sleep
}


def _calls(path: Path) -> list[tuple[int, str]]:
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if node.func.attr in NON_DETERMINISTIC_CALLS and owner_name != "workflow":
                found.append((node.lineno, f"{owner_name}.{node.func.attr}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"uuid4", "open"}:
            found.append((node.lineno, node.func.id))
    return found


@pytest.mark.parametrize("relative", WORKFLOW_CODE)
def test_workflow_code_makes_no_non_deterministic_call(relative: str) -> None:
    assert _calls(ROOT / relative) == [], f"{relative}: use workflow.now()/workflow.uuid4()/workflow.sleep()"


def test_the_determinism_scan_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import datetime, uuid\nx = datetime.datetime.now()\ny = uuid.uuid4()\nz = workflow.now()\n")
    assert _calls(sample) == [(2, "datetime.now"), (3, "uuid.uuid4")]
