"""The soak: a mixed workload (openings, commands as updates and signals, deadlines falling due) while both
workers are SIGKILLed in turn, the projector is SIGKILLed and PostgreSQL is cut off (``soak.py``).

CI runs it for 30 s. ``python -m bench.soak`` (hours) and the bench's ``chaos`` scenario run this same test
with other sizes through ``FAULT_SOAK_*`` and read its result from ``FAULT_SOAK_OUTPUT``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.faults.report import FaultRun
from tests.faults.soak import Soak, SoakPlan, row


def plan_from_env() -> SoakPlan:
    """CI's sizes unless ``FAULT_SOAK_SECONDS``, ``_KILLS``, ``_PROJECTOR_KILLS``, ``_CUTS``, ``_OPEN_EVERY`` say."""
    env = os.environ
    return SoakPlan(
        seconds=float(env.get("FAULT_SOAK_SECONDS", "30")),
        worker_kills=int(env.get("FAULT_SOAK_KILLS", "10")),
        projector_kills=int(env.get("FAULT_SOAK_PROJECTOR_KILLS", "2")),
        database_cuts=int(env.get("FAULT_SOAK_CUTS", "2")),
        open_every=float(env.get("FAULT_SOAK_OPEN_EVERY", "0.3")),
    )


PLAN = plan_from_env()
pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(400 + 2 * PLAN.seconds))]


async def test_a_mixed_workload_under_every_fault_at_once_loses_duplicates_and_misses_nothing(
    dev_env: WorkflowEnvironment,
    own_db: tuple[asyncpg.Pool, str],
    task_queue: str,
    tmp_path: Path,
    fault_run: FaultRun,
) -> None:
    pool, url = own_db
    result = await Soak(dev_env.client, pool, url, task_queue, tmp_path, PLAN).run()
    assert result.worker_kills == PLAN.worker_kills and result.projector_kills == PLAN.projector_kills
    assert result.database_cuts == PLAN.database_cuts
    # The walk reached well beyond acknowledging: most command kinds were sent, some refused by a case rule.
    assert len(result.commands_by_name) >= 8, result.commands_by_name
    summary = row(result)
    fault_run.fault = summary["faults"]
    fault_run.workload = summary["workload"]
    fault_run.checked = result.checked
    fault_run.measured = {"breach stored - due": result.lateness, "late breaches": result.late}
    output = os.environ.get("FAULT_SOAK_OUTPUT")
    if output:
        Path(output).write_text(json.dumps({"row": summary, "lateness_seconds": result.lateness_seconds}))
