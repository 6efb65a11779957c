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
