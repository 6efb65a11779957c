"""The soak at CI size: 30 s of mixed workload (openings, commands as updates and signals, deadlines
falling due) while both workers are SIGKILLed in turn, the projector is SIGKILLed and PostgreSQL is cut off.
``python -m bench.soak`` runs the same code for hours."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.faults.report import FaultRun
from tests.faults.soak import Soak, SoakPlan, row

PLAN = SoakPlan(seconds=30, worker_kills=10, projector_kills=2, database_cuts=2, open_every=0.3)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


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
    fault_run.measured = {"breach stored - due": result.lateness}
