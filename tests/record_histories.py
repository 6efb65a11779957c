"""Record the canonical workflow histories that `tests/test_workflow_replay.py` replays on every run.

    .venv/bin/python -m tests.record_histories

Run it only when a workflow change is *meant* to change what the workflow does
(and guard old histories with ``workflow.patched``; see the README, "Changing
workflow code safely"). Histories recorded before such a change stay beside the
new ones under another name (``deadlines.json`` before the directory lookups,
``deadlines.directory.json`` with them, ``deadlines.compact.json`` with the compact
history), so every path keeps replaying. It runs each scenario on the time-skipping test server
against a fresh database (``DATABASE_URL``'s server, else an embedded one) and
writes ``tests/histories/<scenario>.<TAG>.json``, and the policies the cases pinned (their
histories name them by hash only) as ``tests/histories/policies/<hash>.json``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities import policy_library
from cli.embedded_postgres import start_embedded_postgres, stop_embedded_postgres
from events.database import create_database, create_pool, drop_database
from events.directory_store import DirectoryStore
from events.store import EventStore
from samples.cases import AGENT, MANAGER, command, open_command
from tests.temporal_fixtures import start_time_skipping_server
from worker import build_worker
from workflows.client import open_case, send_command
from workflows.core import commands as c
from workflows.core.canonical import canonical_json
from workflows.core.events import Actor, Customer, CustomerInput
from workflows.core.vocabulary import (
    CustomerTier,
    NoteVisibility,
    PauseReason,
    Role,
    RootCause,
    Severity,
    WithdrawReason,
)
from workflows.directory_files import EXAMPLE_DIRECTORY, import_directory, team_calendar
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy

HERE = Path(__file__).resolve().parent / "histories"
# Where the replay test finds the policies that compact histories name by hash (the pinned_policies table's part).
POLICIES = HERE / "policies"
# Names what the workflow code records today; a change recorded anew takes a new tag, the old files stay.
TAG = "compact"
TASK_QUEUE = "histories"
Scenario = Callable[[WorkflowEnvironment, str], Awaitable[list[WorkflowHandle]]]


async def lifecycle(env: WorkflowEnvironment, case_id: str) -> list[WorkflowHandle]:
    """Open, acknowledge, note, propose, accept, follow up, close, and the reopen window runs out."""
    client = env.client
    handle = await open_case(client, open_command(case_id, severity=Severity.SEV3), task_queue=TASK_QUEUE)
    await send_command(client, case_id, command(c.Acknowledge))
    await send_command(client, case_id, command(c.AddNote, visibility=NoteVisibility.INTERNAL, text="looking"))
    proposal = command(c.ProposeResolution, summary="Fixed", root_cause=RootCause.CONFIGURATION, root_cause_text="x")
    await send_command(client, case_id, proposal)
    await send_command(client, case_id, command(c.SignOff, actor=MANAGER))
    await send_command(client, case_id, command(c.RecordCustomerResponse, accepted=True))
    await env.sleep(timedelta(days=15))  # the follow-up falls due
    await send_command(client, case_id, command(c.CompleteFollowUp, satisfaction=4))
    await send_command(client, case_id, command(c.Close))
    await env.sleep(timedelta(days=31))  # the reopen window ends: the workflow completes
    await handle.result()
    return [handle]


async def deadlines(env: WorkflowEnvironment, case_id: str) -> list[WorkflowHandle]:
    """A P1 case nobody touches: warnings, breaches up the matrix, repeats at the top; then withdrawn."""
    command_open = open_command(
        case_id, severity=Severity.SEV1, customer=Customer(id="acme", name="ACME", tier=CustomerTier.STRATEGIC)
    )
    handle = await open_case(env.client, command_open, task_queue=TASK_QUEUE)
    await env.sleep(timedelta(hours=6))
    await send_command(env.client, case_id, command(c.Withdraw, actor=MANAGER, reason=WithdrawReason.DUPLICATE))
    await handle.result()
    return [handle]


async def pause(env: WorkflowEnvironment, case_id: str) -> list[WorkflowHandle]:
    """Acknowledged, paused for two hours waiting on the customer, resumed, withdrawn."""
    handle = await open_case(env.client, open_command(case_id), task_queue=TASK_QUEUE)
    await send_command(env.client, case_id, command(c.Acknowledge))
    await send_command(env.client, case_id, command(c.Pause, reason=PauseReason.WAITING_ON_CUSTOMER))
    await env.sleep(timedelta(hours=2))
    await send_command(env.client, case_id, command(c.Resume))
    await send_command(env.client, case_id, command(c.Withdraw, actor=MANAGER, reason=WithdrawReason.DUPLICATE))
    await handle.result()
    return [handle]


async def continue_as_new(env: WorkflowEnvironment, case_id: str) -> list[WorkflowHandle]:
    """Few events per run: the case continues as new twice and carries its state (and command keys)."""
    first = await open_case(env.client, open_command(case_id), task_queue=TASK_QUEUE, max_events_per_run=3)
    for n in range(6):
        await send_command(env.client, case_id, command(c.AddNote, actor=AGENT, text=f"note {n}"))
    await send_command(env.client, case_id, command(c.Withdraw, actor=MANAGER, reason=WithdrawReason.DUPLICATE))
    latest = env.client.get_workflow_handle(first.id)
    await latest.result()
    first_run = env.client.get_workflow_handle(first.id, run_id=first.first_execution_run_id)
    return [first_run, latest]


async def routed(env: WorkflowEnvironment, case_id: str) -> list[WorkflowHandle]:
    """A P1 opened with the customer's id alone, routed by the directory; two breaches name their
    responders (the escalation manager, the director); acknowledged, then withdrawn."""
    opening = open_command(case_id, severity=Severity.SEV1, customer=CustomerInput(id="acme"))
    handle = await open_case(env.client, opening, task_queue=TASK_QUEUE)
    await env.sleep(timedelta(minutes=35))
    await send_command(env.client, case_id, command(c.Acknowledge))
    await send_command(env.client, case_id, command(c.Withdraw, actor=MANAGER, reason=WithdrawReason.DUPLICATE))
    await handle.result()
    return [handle]


SCENARIOS: dict[str, Scenario] = {
    "lifecycle": lifecycle,
    "deadlines": deadlines,
    "pause": pause,
    "continue_as_new": continue_as_new,
    "routed": routed,
}


async def _record(client: Client, env: WorkflowEnvironment, store: EventStore) -> None:
    # The example directory, so openings are routed and levels name their responders (the lookups'
    # local activities are in the recorded histories).
    await import_directory(
        DirectoryStore(store.pool, team_calendar),
        EXAMPLE_DIRECTORY.read_text(encoding="utf-8"),
        actor=Actor(id="histories", role=Role.ADMIN),
        reason="recording histories",
    )
    worker = build_worker(client, store, load_policy(DEFAULT_POLICY_PATH), task_queue=TASK_QUEUE, sandboxed=True)
    async with worker:
        for name, scenario in SCENARIOS.items():
            handles = await scenario(env, f"history-{name}-{uuid.uuid4().hex[:6]}")
            for i, handle in enumerate(handles):
                history = await handle.fetch_history()
                path = HERE / (f"{name}.{TAG}.json" if i == 0 else f"{name}.{TAG}.run{i + 1}.json")
                path.write_text(history.to_json())
                print(f"recorded {path.relative_to(HERE.parent.parent)} ({len(history.events)} events)")
    POLICIES.mkdir(exist_ok=True)
    for content_hash, policy in policy_library.known().items():
        (POLICIES / f"{content_hash}.json").write_text(canonical_json(policy.content()) + "\n")


async def main() -> None:
    server = None
    server_dsn = os.environ.get("DATABASE_URL")
    if not server_dsn:
        server_dsn, server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="esc-histories-")) / "pg")
    name = f"esc_histories_{uuid.uuid4().hex[:8]}"
    pool = await create_pool(await create_database(server_dsn, name))
    env = await start_time_skipping_server()
    try:
        await _record(env.client, env, EventStore(pool))
    finally:
        await env.shutdown()
        await pool.close()
        await drop_database(server_dsn, name)
        if server is not None:
            stop_embedded_postgres(server)


if __name__ == "__main__":
    asyncio.run(main())
    os._exit(0)
