"""Early-warning signals: policy rules open a proactive case; at most one is open per account.

A burst of signals for one account is serialised by a transaction-scoped advisory
lock on the account only when no open proactive case is known, so exactly one case
is opened; once it exists, signals are attached to it (a Temporal signal: fire
and forget) without taking the lock.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING

import asyncpg
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal
from api.models import SignalBody, SignalReply
from workflows.client import case_handle, open_case_and_wait
from workflows.core.commands import AttachSignal, OpenEscalation
from workflows.core.events import CustomerInput, EarlyWarningSignal
from workflows.core.state import ACTIVE
from workflows.core.vocabulary import CustomerTier, LifecycleStage, SourceKind

if TYPE_CHECKING:
    from api.services import Services


# Within one process, requests for the same account queue here (holding no database
# connection); the advisory lock below serialises them across API processes.
_account_locks: dict[str, asyncio.Lock] = {}


async def receive_signal(
    services: Services, principal: Principal, customer_id: str, body: SignalBody, command_key: str
) -> SignalReply:
    signal = EarlyWarningSignal(kind=body.kind, value=body.value, detail=body.detail)
    async with services.pool.acquire() as conn:
        # Fast path, no lock: the account already has an open proactive case.
        case_id = await _open_proactive_case(services, conn, customer_id)
    if case_id is not None:
        await _attach(services, principal, case_id, signal, command_key)
        outcome = "attached"
    else:
        async with _account_locks.setdefault(customer_id, asyncio.Lock()):
            outcome, case_id = await _open_or_attach(services, principal, customer_id, body, signal, command_key)
    async with services.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO account_signals (customer_id, kind, value, detail, received_by, outcome, case_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            customer_id,
            body.kind.value,
            body.value,
            body.detail,
            principal.name,
            outcome,
            case_id,
        )
    return SignalReply(outcome=outcome, case_id=case_id, signal=signal)


async def _open_or_attach(
    services: Services,
    principal: Principal,
    customer_id: str,
    body: SignalBody,
    signal: EarlyWarningSignal,
    command_key: str,
) -> tuple[str, str | None]:
    """Under the account's lock: attach to a case opened meanwhile, open one, or do nothing."""
    async with services.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('proactive:' || $1))", customer_id)
        case_id = await _open_proactive_case(services, conn, customer_id)
        if case_id is not None:
            await _attach(services, principal, case_id, signal, command_key)
            return "attached", case_id
        rules = (await services.policy_in_force()).early_warning
        severity = rules.severity_for(body.kind, body.value)
        if severity is None:
            return "below_threshold", None
        case_id = "proactive-" + hashlib.sha256(command_key.encode()).hexdigest()[:16]
        await _open(services, principal, case_id, customer_id, body, signal, severity, rules.category, command_key)
        await conn.execute(
            "INSERT INTO proactive_cases (customer_id, case_id) VALUES ($1, $2) "
            "ON CONFLICT (customer_id) DO UPDATE SET case_id = EXCLUDED.case_id, opened_at = now()",
            customer_id,
            case_id,
        )
        return "opened", case_id


async def _open_proactive_case(services: Services, conn: asyncpg.Connection, customer_id: str) -> str | None:
    """The account's proactive case if it is still open.

    Asks the Temporal server (describe, which does not load the worker) whether the
    workflow runs, and the case list whether the case is still active; a case not
    projected yet counts as open. Querying the workflow itself for every signal of a
    burst would overwhelm it.
    """
    case_id = await conn.fetchval("SELECT case_id FROM proactive_cases WHERE customer_id = $1", customer_id)
    if case_id is None:
        return None
    try:
        description = await case_handle(services.client, case_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    status = await conn.fetchval("SELECT status FROM case_list WHERE case_id = $1", case_id)
    return case_id if status is None or status in ACTIVE else None


async def _attach(services: Services, principal: Principal, case_id: str, signal: EarlyWarningSignal, key: str) -> None:
    command = AttachSignal(actor=principal.actor, idempotency_key=key, signal=signal)
    await case_handle(services.client, case_id).signal("attach_signal", command)


async def _open(
    services: Services,
    principal: Principal,
    case_id: str,
    customer_id: str,
    body: SignalBody,
    signal: EarlyWarningSignal,
    severity,  # noqa: ANN001 - Severity
    category,  # noqa: ANN001 - Category
    key: str,
) -> None:
    # A stored account completes the customer (its name, tier and value); without one, what the signal says.
    stored = await services.directory.account(customer_id)
    tier = body.customer_tier if stored is not None else body.customer_tier or CustomerTier.STANDARD
    name = body.customer_name if stored is not None else body.customer_name or customer_id
    customer = CustomerInput(id=customer_id, name=name, tier=tier)
    command = OpenEscalation(
        actor=principal.actor,
        idempotency_key=key,
        case_id=case_id,
        customer=customer,
        category=category,
        lifecycle_stage=LifecycleStage.ONGOING_SUPPORT,
        severity=severity,
        title=f"Early warning: {body.kind.value} = {body.value:g}",
        description=f"Opened proactively from an early-warning signal ({body.kind.value} = {body.value:g})"
        + (f": {body.detail}" if body.detail else "."),
        source=SourceKind.EARLY_WARNING,
        signal=signal,
    )
    await open_case_and_wait(services.client, command, task_queue=services.task_queue)
