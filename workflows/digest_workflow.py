"""``ExecutiveDigestWorkflow``: what a Temporal Schedule starts to send the executives their digest.

Thin, like the case workflow: one activity composes the digest from the read models, keeps it and queues
it for every executive in the directory (inbox, and email where they have an address and SMTP is
configured). ``ensure_digest_schedule`` creates (or updates) the schedule at the worker's start:
daily by default (``ESCALATIONS_DIGEST_EVERY``, a duration such as ``24h``; ``off`` for none).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.contract import COMPOSE_DIGEST, DigestRequest

DIGEST_WORKFLOW = "ExecutiveDigestWorkflow"
DIGEST_SCHEDULE_ID = "escalations-executive-digest"


@workflow.defn(name=DIGEST_WORKFLOW)
class ExecutiveDigestWorkflow:
    @workflow.run
    async def run(self, hours: int) -> int:
        """Compose and queue the digest of the ``hours`` before now; returns how many executives get it."""
        return await workflow.execute_activity(
            COMPOSE_DIGEST,
            DigestRequest(hours=hours, scheduled_at=workflow.now()),
            result_type=int,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        )


async def ensure_digest_schedule(client: Client, task_queue: str, every: timedelta) -> None:
    """The digest schedule, every ``every`` (created, or its spec updated if it exists)."""
    hours = max(1, round(every.total_seconds() / 3600))
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            DIGEST_WORKFLOW, hours, id=f"{DIGEST_SCHEDULE_ID}-run", task_queue=task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(DIGEST_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(DIGEST_SCHEDULE_ID).update(replace)
