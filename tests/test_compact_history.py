"""A case's Temporal history names its policy by content hash and holds no copy of it, nor of the events
it stored; a worker that never saw the policy finds it in the pinned_policies table (or fails the task,
naming the hash, never the case)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

import worker as worker_module
from activities import policy_library
from activities.contract import AppendReply, Receipt
from events.pinned_policies import InMemoryPins, PostgresPins, blocking_finder
from events.store import EventStore
from samples.cases import command, open_command
from tests.eventually import assert_eventually
from tests.factories import opening_events
from tests.temporal_fixtures import history_payload_texts, running_worker
from workflows.client import send_command
from workflows.core.commands import Acknowledge
from workflows.core.events import Opened, stream_id_for
from workflows.core.policy import Policy
from workflows.data_converter import data_converter
from workflows.escalation_workflow import EscalationWorkflow


async def _acknowledged_case(dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy) -> WorkflowHistory:
    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        handle = await cases.open(opening)
        await send_command(dev_env.client, opening.case_id, command(Acknowledge))
        return await handle.fetch_history()


async def test_a_case_history_names_its_policy_by_hash_and_holds_no_copy_of_it(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    history = await _acknowledged_case(dev_env, pool, policy)
    texts = history_payload_texts(history)
    content_hash = policy.content_hash()
    assert any(content_hash in text for text in texts), "the opening's reference names the policy's hash"
    # The policy's own sections appear nowhere: not in a local activity's result, not in an echoed event.
    for section in ("reopen_window", "calendars"):
        assert not [t for t in texts if f'"{section}"' in t], f"the history holds the policy's {section!r}"
    # Each append (the opening, the acknowledgement) answered with receipts, not the events it was sent.
    replies = [json.loads(t) for t in texts if t.startswith('{"receipts":')]
    assert len(replies) == 2 and all(r["receipts"] and not r["events"] for r in replies), replies
    # The record keeps it whole, and the table every worker reads holds it under its hash.
    case_id = history.workflow_id.removeprefix("escalation-")
    opened = (await store.read_stream(stream_id_for(case_id)))[0].data
    assert isinstance(opened, Opened) and Policy.model_validate(opened.policy).content_hash() == content_hash
    found = await PostgresPins(pool).find(content_hash)
    assert found is not None and found.content_hash() == content_hash


async def test_a_worker_that_never_saw_the_policy_replays_the_case_from_the_pinned_table(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy
) -> None:
    history = await _acknowledged_case(dev_env, pool, policy)
    replayer = Replayer(workflows=[EscalationWorkflow], data_converter=data_converter)
    loop = asyncio.get_running_loop()
    try:
        policy_library.forget_all()
        policy_library.install_loader(blocking_finder(PostgresPins(pool), loop))
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert replayed.replay_failure is None, replayed.replay_failure
        assert policy.content_hash() in policy_library.known()

        # A store that lacks it: the workflow task fails, naming the hash.
        policy_library.forget_all()
        policy_library.install_loader(blocking_finder(InMemoryPins(), loop))
        refused = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert refused.replay_failure is not None
        assert policy.content_hash() in str(refused.replay_failure)
    finally:
        policy_library.install_loader(None)
        policy_library.remember(policy)


async def test_a_pinned_row_whose_content_is_not_its_hash_is_refused(pool: asyncpg.Pool, policy: Policy) -> None:
    other = Policy.model_validate({**policy.content(), "label": "tampered"})
    wrong_hash = uuid.uuid4().hex * 2  # a row filed under a hash its content does not have
    await PostgresPins(pool).pin(other, wrong_hash)
    await PostgresPins(pool).pin(policy, policy.content_hash())
    # What a worker loads when it starts: every row but the one that is not what it claims.
    corrupt_hash = uuid.uuid4().hex * 2
    async with pool.acquire() as conn:  # bytes that are no policy at all
        await conn.execute("INSERT INTO pinned_policies (content_hash, content) VALUES ($1, '{\"x\": 1')", corrupt_hash)
    pinned = await PostgresPins(pool).all_but(())
    assert (
        corrupt_hash not in pinned
        and wrong_hash not in pinned
        and pinned[policy.content_hash()].content_hash() == policy.content_hash()
    )
    assert policy.content_hash() not in await PostgresPins(pool).all_but([policy.content_hash()])
    saved = policy_library.known()
    try:
        policy_library.forget_all()
        policy_library.install_loader(blocking_finder(PostgresPins(pool), asyncio.get_running_loop()))
        # Workflow code asks from a workflow task's thread, never from the loop's.
        with pytest.raises(policy_library.PolicyNotFound, match=f"holds a policy whose hash is {other.content_hash()}"):
            await asyncio.to_thread(policy_library.policy_for, wrong_hash)
        assert wrong_hash not in policy_library.known()
        with pytest.raises(policy_library.PolicyNotFound, match="event loop's own thread"):
            policy_library.policy_for(wrong_hash)
    finally:
        policy_library.install_loader(None)
        for known in saved.values():
            policy_library.remember(known)


async def test_a_running_worker_learns_the_policies_other_workers_pin(
    dev_env: WorkflowEnvironment, database_url: str, pool: asyncpg.Pool, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before a replay needs it: a policy another worker pinned is in this worker's library within a round."""
    monkeypatch.setattr(worker_module, "PINNED_POLICIES_EVERY", 0.05)
    settings = dataclasses.replace(
        worker_module.Settings.from_env({}),
        database_url=database_url,
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=f"pins-{uuid.uuid4().hex[:8]}",
        digest_every=None,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(worker_module.run_worker(settings, stop))
    other = Policy.model_validate({**policy.content(), "label": f"pinned elsewhere {uuid.uuid4().hex[:6]}"})
    try:
        await asyncio.sleep(0.5)  # the worker is up, its first round done
        assert other.content_hash() not in policy_library.known()
        await PostgresPins(pool).pin(other, other.content_hash())  # as another worker's opening does

        async def known() -> dict[str, Policy]:
            return policy_library.known()

        await assert_eventually(known, lambda found: other.content_hash() in found, timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=30)


def test_receipts_answer_exactly_the_append_they_were_given_for(policy: Policy) -> None:
    sent = opening_events(open_command(), policy)
    receipt = Receipt(version=1, position=7, recorded_at=datetime.now(UTC), prev_hash="0" * 64, hash="1" * 64)
    [recorded] = AppendReply(receipts=[receipt]).recorded(sent)
    assert recorded.model_dump(exclude={"position", "recorded_at", "prev_hash", "hash"}) == sent[0].model_dump()
    assert (recorded.position, recorded.hash) == (7, "1" * 64)
    with pytest.raises(ValueError, match=r"versions \[2\] answer no append of versions \[1\]"):
        AppendReply(receipts=[receipt.model_copy(update={"version": 2})]).recorded(sent)
    assert json.loads(AppendReply(receipts=[receipt]).model_dump_json())["events"] == []
