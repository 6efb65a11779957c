"""The house's rules, read from the code itself: the pure core, no cycles, deterministic workflow code.

Every list here is derived from the tree (the core is whatever ``workflows/core/`` holds; the
workflow's code is whatever ``workflows.escalation_workflow`` reaches through the project's
imports), so a new module is checked the day it is added. Each rule has a test that shows it
can fail on a small sample.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE_PACKAGE = "workflows.core"
WORKFLOW_MODULE = "workflows.escalation_workflow"
SKIPPED_DIRS = {".venv", ".data", ".git", "node_modules", "__pycache__", ".pytest_cache", ".hypothesis"}

# What the core may import: pydantic, its own modules, and the parts of the standard library that do
# no I/O. zoneinfo builds zones from bytes the policy carries (never from the file system), io wraps
# those bytes; anything touching files, the network, the environment, processes or the clock's
# sources is absent on purpose.
CORE_ALLOWED_IMPORTS = {
    "__future__",
    "abc",
    "base64",
    "bisect",
    "collections",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "functools",
    "hashlib",
    "io",
    "itertools",
    "json",
    "math",
    "operator",
    "re",
    "typing",
    "uuid",
    "zoneinfo",
    "pydantic",
}


# ---------------------------------------------------------------------------- reading the tree


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every Python module of the tree (production code, tests, benchmarks), by dotted name."""
    found: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if SKIPPED_DIRS & set(relative.parts):
            continue
        found[_module_name(path, root)] = path
    return found


def imports_of(path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every import in ``path``, function-level ones included; a name imported from a
    package resolves to its submodule when that is a module of the tree."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.append((node.lineno, candidate if candidate in known else node.module))
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of the tree it imports."""
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for _, imported in imports_of(path, known):
            while imported and imported not in known:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def folder_of(module: str, modules: dict[str, Path], root: Path = ROOT) -> str:
    """The top-level folder a module lives in (``.`` for ``worker.py``), the core counted as a folder
    of its own: it is the ground floor every other folder stands on, inside ``workflows/``."""
    if module == CORE_PACKAGE or module.startswith(CORE_PACKAGE + "."):
        return CORE_PACKAGE.replace(".", "/")
    parts = modules[module].relative_to(root).parts
    return parts[0] if len(parts) > 1 else "."


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def folder_graph(graph: dict[str, set[str]], modules: dict[str, Path]) -> dict[str, set[str]]:
    folders: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        for target in targets:
            a, b = folder_of(source, modules), folder_of(target, modules)
            if a != b:
                folders[a].add(b)
    return dict(folders)


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


MODULES = project_modules()
GRAPH = import_graph(MODULES)
CORE_MODULES = sorted(m for m in MODULES if m == CORE_PACKAGE or m.startswith(CORE_PACKAGE + "."))
WORKFLOW_CODE = sorted(reachable(GRAPH, WORKFLOW_MODULE))


# ---------------------------------------------------------------------------- the core is pure


def forbidden_core_imports(path: Path) -> list[tuple[int, str]]:
    return [
        (line, name)
        for line, name in imports_of(path, set(MODULES))
        if name.split(".")[0] not in CORE_ALLOWED_IMPORTS and not name.startswith(CORE_PACKAGE)
    ]


def test_the_core_is_derived_from_its_package() -> None:
    assert {"workflows.core.decide", "workflows.core.evolve", "workflows.core.events"} <= set(CORE_MODULES)
    assert len(CORE_MODULES) >= 10


@pytest.mark.parametrize("module", CORE_MODULES)
def test_the_core_imports_only_pydantic_and_pure_standard_library(module: str) -> None:
    assert forbidden_core_imports(MODULES[module]) == [], (
        f"{module} imports outside the core's allowance (I/O, Temporal, or another layer)"
    )


def test_the_forbidden_import_check_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncpg\nfrom pathlib import Path\nfrom workflows.core.events import Opened\n")
    assert forbidden_core_imports(sample) == [(1, "asyncpg"), (2, "pathlib")]


def test_importing_the_whole_core_loads_no_io_library() -> None:
    code = "import sys, importlib\n"
    code += "".join(f"importlib.import_module({m!r})\n" for m in CORE_MODULES)
    code += "print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    heavy = {"temporalio", "asyncpg", "fastapi", "starlette", "httpx", "structlog", "tzdata", "holidays", "uvicorn"}
    assert not {m for m in loaded if m.split(".")[0] in heavy}
    ours = {m for m in loaded if m in MODULES and not m.startswith(CORE_PACKAGE)} - {"workflows"}
    assert not ours, f"the core pulled in other layers: {sorted(ours)}"


# ---------------------------------------------------------------------------- no cycles


def test_no_import_cycle_between_files() -> None:
    assert cycles(GRAPH) == []


def test_no_import_cycle_between_folders() -> None:
    assert cycles(folder_graph(GRAPH, MODULES)) == []


def test_the_cycle_check_can_fail() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_folders_are_the_top_level_ones_and_the_core() -> None:
    folders = {folder_of(m, MODULES) for m in MODULES}
    assert {"workflows", "workflows/core", "events", "activities", "projections", "api", "tests", "."} <= folders
    assert "tests/faults" not in folders and "api/routes" not in folders


def test_tests_and_benchmarks_do_not_import_each_other() -> None:
    crossing = [
        (source, target)
        for source, targets in GRAPH.items()
        for target in targets
        if {source.split(".")[0], target.split(".")[0]} == {"tests", "bench"}
    ]
    assert crossing == []


# ---------------------------------------------------------------------------- deterministic workflow code

# Production workers run without Temporal's sandbox (README "Tuning"), so the calls it would trap are
# refused here, statically, in every module the workflow executes. The suite's workers stay sandboxed.
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
    "randrange",
    "choice",
    "shuffle",
    "urandom",
    "getenv",
    "sleep",  # time.sleep / asyncio.sleep: use workflow.sleep
}
NON_DETERMINISTIC_NAMES = {"uuid4", "open", "getenv", "sleep", "random"}


def non_deterministic_calls(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if node.func.attr in NON_DETERMINISTIC_CALLS and owner_name != "workflow":
                found.append((node.lineno, f"{owner_name}.{node.func.attr}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in NON_DETERMINISTIC_NAMES:
            found.append((node.lineno, node.func.id))
        elif isinstance(node, ast.Attribute) and node.attr == "environ":
            found.append((node.lineno, "environ"))
    return found


def test_the_workflow_code_is_derived_from_the_imports() -> None:
    assert WORKFLOW_MODULE in WORKFLOW_CODE
    assert {"workflows.core.decide", "workflows.core.evolve", "activities.contract"} <= set(WORKFLOW_CODE)


def test_workflow_code_reaches_no_database_driver_or_store() -> None:
    assert not {"events.store", "events.database", "activities.event_store_activities"} & set(WORKFLOW_CODE)
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, {WORKFLOW_MODULE}; print('\\n'.join(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "asyncpg" not in loaded and "structlog" not in loaded


@pytest.mark.parametrize("module", WORKFLOW_CODE)
def test_workflow_code_makes_no_non_deterministic_call(module: str) -> None:
    assert non_deterministic_calls(MODULES[module]) == [], (
        f"{module}: use workflow.now()/workflow.uuid4()/workflow.sleep(); never the environment"
    )


def test_the_determinism_scan_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import datetime, os, uuid\nx = datetime.datetime.now()\ny = uuid.uuid4()\nz = workflow.now()\n"
        "w = os.environ['X']\n"
    )
    assert non_deterministic_calls(sample) == [(2, "datetime.now"), (3, "uuid.uuid4"), (5, "environ")]
