"""EscalationWorkflow on the Temporal dev server: updates, refusals, idempotency, fold."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from events.store import EventStore
from samples.cases import AGENT, MANAGER, SERVICE, command, open_command
from tests.eventually import assert_eventually
from tests.factories import opening_events
from tests.temporal_fixtures import running_worker
from workflows.client import CommandRefused, case_handle, case_state, open_case_and_wait, send_command
from workflows.core.case_view import case_view
from workflows.core.commands import Acknowledge, AddNote, AssignOwner, DecideCompensation, SignOff
from workflows.core.decide import decide, envelopes
from workflows.core.events import stream_id_for
from workflows.core.evolve import evolve, fold
from workflows.core.policy import Policy
from workflows.core.vocabulary import NoteVisibility
from workflows.messages import CommandResult


async def stored(store: EventStore, case_id: str):
    return await store.read_stream(stream_id_for(case_id))


async def test_a_command_sent_right_after_start_is_stored_after_the_opening_event(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        await cases.open(opening)
        result = await send_command(dev_env.client, opening.case_id, command(Acknowledge))
        assert [e.type for e in result.events] == ["escalation.acknowledged"]
        events = await stored(store, opening.case_id)
        assert [e.type for e in events] == ["escalation.opened", "escalation.acknowledged"]
        assert result.state == case_view(fold(events))
        assert await case_state(dev_env.client, opening.case_id) == case_view(fold(events))


async def test_a_refused_command_names_its_rule_and_writes_nothing(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        await cases.open(opening)
        await send_command(dev_env.client, opening.case_id, command(Acknowledge))
        before = await stored(store, opening.case_id)
        with pytest.raises(CommandRefused) as wrong_state:
            await send_command(dev_env.client, opening.case_id, command(Acknowledge))
        assert wrong_state.value.rule == "acknowledge.not_open"
        with pytest.raises(CommandRefused) as wrong_role:
            await send_command(dev_env.client, opening.case_id, command(SignOff, actor=AGENT))
        assert wrong_role.value.rule == "permission.sign_off"
        with pytest.raises(CommandRefused) as nothing:
            await send_command(
                dev_env.client, opening.case_id, command(DecideCompensation, actor=MANAGER, approved=True)
            )
        assert nothing.value.rule == "decide_compensation.nothing_awaiting"
        assert "decide_compensation.nothing_awaiting" in str(nothing.value)
        assert await stored(store, opening.case_id) == before


async def test_a_malformed_payload_is_rejected_and_writes_nothing(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    from temporalio.client import WorkflowUpdateFailedError

    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        handle = await cases.open(opening)
        await send_command(dev_env.client, opening.case_id, command(Acknowledge))
        before = await stored(store, opening.case_id)
        # A missing field (no owner) and an unknown one, sent as raw JSON as a non-Python client could.
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(
                "assign",
                {"actor": {"id": "a", "role": "agent"}, "idempotency_key": "k1", "command": "assign", "colour": "red"},
            )
        message = str(failed.value.cause)
        assert 'rule "command.malformed"' in message and "owner: Field required" in message and "colour" in message
        assert await stored(store, opening.case_id) == before


async def test_redelivering_a_command_changes_nothing(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        await cases.open(opening)
        assign = command(AssignOwner, owner="bob")
        first = await send_command(dev_env.client, opening.case_id, assign)
        # Same update id: Temporal's own dedup answers with the first result.
        again = await send_command(dev_env.client, opening.case_id, assign)
        assert again.versions == first.versions
        # Another update id (as after continue-as-new): our idempotency key answers.
        handle = case_handle(dev_env.client, opening.case_id)
        redelivered = await handle.execute_update("assign", assign, id="another-delivery", result_type=CommandResult)
        assert not first.duplicate and redelivered.duplicate and redelivered.versions == first.versions
        assert [e.type for e in await stored(store, opening.case_id)] == [
            "escalation.opened",
            "escalation.owner_assigned",
        ]


async def test_a_key_reused_for_another_request_is_refused_by_rule_even_after_continue_as_new(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    """Temporal answers a repeated update id with the first outcome; a different body under the same
    idempotency key must not get that answer (nor a new one): it is refused, and nothing is written."""
    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        handle = await cases.open(opening, max_events_per_run=3)
        first_run = (await handle.describe()).run_id
        note = command(AddNote, text="first words")
        await send_command(dev_env.client, opening.case_id, note)
        for i in range(3):  # past a continue-as-new: the key and its digest now live only in the carried state
            await send_command(dev_env.client, opening.case_id, command(AddNote, text=f"filler {i}"))
        before = await stored(store, opening.case_id)
        assert (await handle.describe()).run_id != first_run

        other_text = note.model_copy(update={"text": "other words"})
        other_actor = note.model_copy(update={"actor": MANAGER})
        other_command = command(Acknowledge).model_copy(update={"idempotency_key": note.idempotency_key})
        for reused in (other_text, other_actor, other_command):
            with pytest.raises(CommandRefused) as refused:
                await send_command(dev_env.client, opening.case_id, reused)
            assert refused.value.rule == "idempotency.key_reused", reused
            assert note.idempotency_key in str(refused.value)
        # Straight to the workflow under a fresh update id: its validator refuses it too.
        with pytest.raises(WorkflowUpdateFailedError) as direct:
            await handle.execute_update("add_note", other_text, id="direct")
        assert 'rule "idempotency.key_reused"' in str(direct.value.cause)
        # The first request sent again is still a redelivery, and nothing was written by any of the above.
        assert (await send_command(dev_env.client, opening.case_id, note)).duplicate
        assert await stored(store, opening.case_id) == before
        folded = fold(await stored(store, opening.case_id))
        assert folded is not None and folded.command_digests[note.idempotency_key] == note.digest()


async def test_opening_under_a_reused_key_with_another_body_is_refused(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        assert (await open_case_and_wait(dev_env.client, opening, task_queue=cases.task_queue)).version == 1
        cases.track(opening.case_id)
        again = await open_case_and_wait(dev_env.client, opening, task_queue=cases.task_queue)
        assert again.version == 1  # the same case, nothing written again
        with pytest.raises(CommandRefused) as refused:
            await open_case_and_wait(
                dev_env.client, opening.model_copy(update={"title": "Another title"}), task_queue=cases.task_queue
            )
        assert refused.value.rule == "idempotency.key_reused"
        assert len(await stored(store, opening.case_id)) == 1


async def test_opening_the_same_case_twice_starts_one_workflow(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        first = await cases.open(opening)
        second = await cases.open(opening)
        assert first.result_run_id == second.result_run_id
        await assert_eventually(lambda: stored(store, opening.case_id), lambda events: len(events) == 1)


async def test_signals_from_services_are_recorded(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        handle = await cases.open(opening)
        await handle.signal(
            "add_note", command(AddNote, actor=SERVICE, visibility=NoteVisibility.INTERNAL, text="CRM: renewal at risk")
        )
        events = await assert_eventually(lambda: stored(store, opening.case_id), lambda events: len(events) == 2)
        assert events[-1].data.text == "CRM: renewal at risk" and events[-1].actor == SERVICE


async def test_continue_as_new_carries_the_state_and_the_idempotency_keys(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        handle = await cases.open(opening, max_events_per_run=3)
        first_run = (await handle.describe()).run_id
        notes = [command(AddNote, text=f"note {i}") for i in range(6)]
        for note in notes:
            await send_command(dev_env.client, opening.case_id, note)
        # Redeliver a command from before the continue-as-new: still a no-op.
        again = await send_command(dev_env.client, opening.case_id, notes[0])
        assert again.duplicate
        events = await stored(store, opening.case_id)
        assert [e.version for e in events] == list(range(1, 8))
        assert (await handle.describe()).run_id != first_run
        assert await case_state(dev_env.client, opening.case_id) == case_view(fold(events))


async def test_racing_commands_each_get_their_own_outcome(dev_env, pool, policy) -> None:  # noqa: ANN001
    """50 acknowledges and 20 notes at once: one acknowledge wins, every note is stored exactly once.

    Found by the HTTP race test: when Temporal aborted a speculative update task, the appends it had made
    were returned to another command's replayed append, and both callers were told they had succeeded.
    """
    async with running_worker(dev_env.client, pool, policy) as cases:
        opened = open_command()
        await cases.open(opened)
        await assert_eventually(lambda: EventStore(pool).read_stream(stream_id_for(opened.case_id)), bool)
        acks = [command(Acknowledge) for _ in range(50)]
        notes = [command(AddNote, text=f"note {i}") for i in range(20)]

        async def send(cmd):  # noqa: ANN001, ANN202
            try:
                return await send_command(dev_env.client, opened.case_id, cmd)
            except CommandRefused as refusal:
                return refusal

        results = await asyncio.gather(*(send(c) for c in acks + notes))
        ack_results, note_results = results[:50], results[50:]
        # A success may come back as a duplicate: the client re-sends an update whose task Temporal aborted.
        won = [cmd for cmd, r in zip(acks, ack_results, strict=True) if not isinstance(r, CommandRefused)]
        assert len(won) == 1, ack_results
        assert {r.rule for r in ack_results if isinstance(r, CommandRefused)} == {"acknowledge.not_open"}
        assert not any(isinstance(r, CommandRefused) for r in note_results), note_results
        stored = await EventStore(pool).read_stream(stream_id_for(opened.case_id))
        keys = [e.command_key for e in stored]
        assert keys.count(won[0].idempotency_key) == 1  # the winner's own event, once
        note_keys = sorted(n.idempotency_key for n in notes)
        assert sorted(k for k in keys if k in set(note_keys)) == note_keys  # every note stored, once
        assert [e.type for e in stored].count("escalation.acknowledged") == 1


async def test_a_stream_ahead_of_the_workflow_is_folded_and_the_command_decided_again(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    """Events a discarded workflow task appended (here: two notes written straight to the
    store) sit after the version the workflow knows, with ids its replay does not draw.
    The command's append conflicts; the workflow folds the stored events and decides again."""
    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        await cases.open(opening)
        stream = stream_id_for(opening.case_id)
        known = await assert_eventually(lambda: stored(store, opening.case_id), lambda events: len(events) == 1)
        leftover_key = "k-from-a-discarded-task"
        notes = [command(AddNote, text="left by a discarded task"), command(AddNote, text="and another")]
        state, leftovers = fold(known), []
        for note in notes:
            new = envelopes(
                stream,
                state.version,
                decide(state, note, datetime.now(UTC)),
                actor=note.actor,
                now=datetime.now(UTC),
                ids=[uuid.uuid4()],
                command_key=leftover_key,
            )
            state = evolve(state, new[0])
            leftovers += new
        await store.append(stream, 1, leftovers)

        result = await send_command(dev_env.client, opening.case_id, command(Acknowledge))

        events = await stored(store, opening.case_id)
        assert [e.type for e in events] == [
            "escalation.opened",
            "escalation.note_added",
            "escalation.note_added",
            "escalation.acknowledged",
        ]
        assert not result.duplicate and result.versions == [4]
        assert result.state == case_view(fold(events)) == await case_state(dev_env.client, opening.case_id)


async def test_a_workflow_never_adopts_a_stream_another_command_opened(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    """Only if Temporal lost a case's workflow could a second one start for a stored stream."""
    async with running_worker(dev_env.client, pool, policy) as cases:
        first, second = open_command(), open_command()
        second = second.model_copy(update={"case_id": first.case_id})
        await store.append(stream_id_for(first.case_id), 0, opening_events(first, policy))
        handle = await cases.open(second)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        assert isinstance(failed.value.cause, ApplicationError)
        assert failed.value.cause.details[0] == "open.case_exists", failed.value.cause
        assert [e.command_key for e in await stored(store, first.case_id)] == [first.idempotency_key]


async def test_an_opening_the_workflow_refuses_names_its_rule_and_leaves_the_case_id_usable(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    """Sent past any pre-check (as when the policy changes between the API's check and the start)."""
    from workflows.core.vocabulary import Priority

    async with running_worker(dev_env.client, pool, policy) as cases:
        refused = open_command(priority_override=Priority.P1)  # an override needs its reason
        with pytest.raises(CommandRefused) as raised:
            await open_case_and_wait(dev_env.client, refused, task_queue=cases.task_queue)
        assert raised.value.rule == "open.override_needs_reason"
        assert await stored(store, refused.case_id) == []
        corrected = open_command(refused.case_id, priority_override=Priority.P1, override_reason="CEO's account")
        state = await open_case_and_wait(dev_env.client, corrected, task_queue=cases.task_queue)
        assert state.case_id == refused.case_id and state.priority == Priority.P1
