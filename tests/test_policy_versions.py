"""Policy versions: publish/list/show, new cases take the current one, and `policy apply` moves open cases."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from subprocess import PIPE

import pytest
from temporalio.testing import WorkflowEnvironment

from events import policy_versions
from events.directory_store import DirectoryStore
from events.store import EventStore
from projections.audit import state_as_of
from projections.case_list import CaseListProjection
from projections.runner import Projector
from samples.cases import open_command
from tests.eventually import assert_eventually
from tests.temporal_fixtures import running_worker
from tests.test_policy_change import slower_policy
from workflows.core.events import Actor, PolicyChanged, stream_id_for
from workflows.core.evolve import fold
from workflows.core.policy import Policy
from workflows.core.vocabulary import DeadlineKind, Role
from workflows.directory_files import EXAMPLE_DIRECTORY, import_directory, team_calendar
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy

ROOT = Path(__file__).resolve().parent.parent


async def cli(url: str, temporal: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``escalations ARGS`` without blocking this event loop (the in-process worker runs on it)."""
    env = {**os.environ, "DATABASE_URL": url, "TEMPORAL_ADDRESS": temporal, "ESCALATIONS_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", *args, cwd=ROOT, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


async def test_published_versions_are_listed_found_by_prefix_and_the_latest_is_current(own_db) -> None:  # noqa: ANN001
    pool, _ = own_db
    first, second = load_policy(DEFAULT_POLICY_PATH), slower_policy()
    assert await policy_versions.current(pool) is None
    # Publication checks the policy against the directory: the default policy routes to the example's teams.
    await import_directory(
        DirectoryStore(pool, team_calendar),
        EXAMPLE_DIRECTORY.read_text(),
        actor=Actor(id="ops", role=Role.ADMIN),
        reason="example",
    )
    await policy_versions.publish(pool, first, author="ops", reason="initial")
    await policy_versions.publish(pool, second, author="ops", reason="slower P1 contract")
    assert (await policy_versions.current(pool)).content_hash == second.content_hash()
    found = await policy_versions.find(pool, first.content_hash()[:10])
    assert found is not None and found.policy == first and found.author == "ops" and found.reason == "initial"
    await policy_versions.publish(pool, first, author="ops", reason="roll back")  # republish: current again
    versions = await policy_versions.list_versions(pool)
    assert [v.reason for v in versions] == ["initial", "slower P1 contract", "roll back"]
    assert (await policy_versions.current(pool)).content_hash == first.content_hash()
    with pytest.raises(ValueError, match="author and a reason"):
        await policy_versions.publish(pool, first, author=" ", reason="x")
    with pytest.raises(ValueError, match="at least the first 8"):
        await policy_versions.find(pool, "abc")


async def test_new_cases_take_the_current_version_and_apply_moves_open_cases(
    dev_env: WorkflowEnvironment,
    own_db,
    policy: Policy,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    pool, url = own_db
    store = EventStore(pool)
    temporal = dev_env.client.service_client.config.target_host
    slower = slower_policy()
    slower_file = tmp_path / "slower.json"
    slower_file.write_text(json.dumps(slower.content()))
    imported = await cli(url, temporal, "directory", "import", str(EXAMPLE_DIRECTORY))
    assert imported.returncode == 0 and "6 people, 3 teams" in imported.stdout, imported.stderr
    published = await cli(
        url, temporal, "policy", "publish", str(DEFAULT_POLICY_PATH), "--author", "ops", "--reason", "v1"
    )
    assert published.returncode == 0, published.stderr
    async with running_worker(dev_env.client, pool, policy_versions.policy_in_force(pool, policy)) as cases:
        before, also_before = open_command(), open_command()
        for opening in (before, also_before):
            await cases.open(opening)
            opened = await assert_eventually(
                lambda o=opening: store.read_stream(stream_id_for(o.case_id)), lambda e: len(e) == 1
            )
            assert opened[0].data.policy_hash == policy.content_hash()

        result = await cli(
            url, temporal, "policy", "publish", str(slower_file), "--author", "ops", "--reason", "contract"
        )
        assert result.returncode == 0, result.stderr
        listed = await cli(url, temporal, "policy", "list")
        assert listed.stdout.count("\n") == 2 and "contract" in listed.stdout.splitlines()[-1]
        shown = await cli(url, temporal, "policy", "show", slower.content_hash()[:12])
        assert json.loads(shown.stdout) == slower.content()

        after = open_command()
        await cases.open(after)
        opened = await assert_eventually(lambda: store.read_stream(stream_id_for(after.case_id)), lambda e: len(e) == 1)
        assert opened[0].data.policy_hash == slower.content_hash()  # new cases take the current version

        stored_before = await store.read_stream(stream_id_for(before.case_id))
        applied = await cli(
            url, temporal, "policy", "apply", slower.content_hash()[:12], "--mode", "retroactive",
            "--case", before.case_id, "--reason", "contract signed", "--as", "manager:maria",
        )  # fmt: skip
        assert applied.returncode == 0, applied.stdout + applied.stderr
        reply = json.loads(applied.stdout)
        assert reply["case_id"] == before.case_id and {m["kind"] for m in reply["moved"]} == {"acknowledge", "resolve"}
        events = await store.read_stream(stream_id_for(before.case_id))
        changed = events[-1].data
        assert isinstance(changed, PolicyChanged) and changed.to_hash == slower.content_hash()
        state = fold(events)
        assert state.clocks[DeadlineKind.ACKNOWLEDGE].due_at == events[0].occurred_at + slower.rules("P1").acknowledge
        # As of just before the change, the audit view still shows the old rules and the old deadline.
        old = await state_as_of(store, before.case_id, events[-1].occurred_at - timedelta(microseconds=1))
        assert old.policy_hash == policy.content_hash()
        assert old.clocks[DeadlineKind.ACKNOWLEDGE].due_at == events[0].occurred_at + policy.rules("P1").acknowledge
        assert events[: len(stored_before)] == stored_before  # the earlier events are untouched

        again = await cli(
            url, temporal, "policy", "apply", slower.content_hash()[:12], "--mode", "rebase",
            "--case", before.case_id, "--reason", "again",
        )  # fmt: skip
        assert again.returncode == 3 and "change_policy.unchanged" in again.stdout

        # The bulk form: every open P1 case of the customer, from the case list.
        await Projector(pool, [CaseListProjection()]).catch_up()
        bulk = await cli(
            url, temporal, "policy", "apply", slower.content_hash()[:12], "--mode", "keep",
            "--all-open", "--priority", "P1", "--customer", "acme", "--reason", "bulk",
        )  # fmt: skip
        replies = {r["case_id"]: r for r in map(json.loads, bulk.stdout.splitlines())}
        assert set(replies) == {before.case_id, also_before.case_id, after.case_id}, bulk.stdout
        # Two are on that version already (moved above, or opened on it): refused by rule.
        assert "change_policy.unchanged" in replies[before.case_id]["refused"]
        assert "change_policy.unchanged" in replies[after.case_id]["refused"]
        assert replies[also_before.case_id]["moved"] == []  # keep: recorded, nothing moves
        kept = (await store.read_stream(stream_id_for(also_before.case_id)))[-1].data
        assert isinstance(kept, PolicyChanged) and kept.mode == "keep" and kept.policy is None
