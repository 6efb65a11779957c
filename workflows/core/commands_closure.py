"""Ending a case: the follow-up, closing, reopening within the window, withdrawing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from workflows.core.command_registry import Command, register
from workflows.core.commands_handling import resumed_now
from workflows.core.errors import DomainError
from workflows.core.events import Closed, EventData, FollowUpCompleted, Reopened, ShortText, Withdrawn
from workflows.core.permissions import SENIOR, STAFF
from workflows.core.state import ACTIVE, EscalationState, Status, follow_up_due
from workflows.core.vocabulary import WithdrawReason


class CompleteFollowUp(Command):
    command: Literal["follow_up"] = "follow_up"
    satisfaction: Annotated[int, Field(ge=1, le=5)]
    comment: ShortText | None = None


def _guard_follow_up(s: EscalationState, now: datetime) -> None:
    # Close, then follow up: the handbook's order. A resolved case may be followed up too.
    if s.status not in (Status.RESOLVED, Status.CLOSED):
        raise DomainError(
            "follow_up.not_resolved", f"case {s.case_id} is {s.status.value}; follow-up comes after resolution"
        )
    due = follow_up_due(s)
    if s.follow_up_due_at is None and (due is None or now < due):
        raise DomainError("follow_up.not_yet_due", f"the follow-up is due at {due.isoformat() if due else 'unknown'}")
    if s.satisfaction is not None:
        raise DomainError("follow_up.already_done", f"the follow-up was recorded (satisfaction {s.satisfaction})")


@register(
    CompleteFollowUp,
    roles=STAFF,
    route="follow-up",
    guard=_guard_follow_up,
    recorded_by=FollowUpCompleted,
    replay=lambda d, f: CompleteFollowUp(**f, satisfaction=d.satisfaction, comment=d.comment),
)
def _follow_up(s: EscalationState, c: CompleteFollowUp, now: datetime) -> list[EventData]:
    return [FollowUpCompleted(satisfaction=c.satisfaction, comment=c.comment)]


class Close(Command):
    command: Literal["close"] = "close"
    note: ShortText | None = None


def _guard_close(s: EscalationState, now: datetime) -> None:
    if s.status != Status.RESOLVED:
        raise DomainError("close.not_resolved", f"case {s.case_id} is {s.status.value}; only a resolved case is closed")


@register(
    Close,
    roles=STAFF,
    route="close",
    guard=_guard_close,
    recorded_by=Closed,
    replay=lambda d, f: Close(**f, note=d.note),
)
def _close(s: EscalationState, c: Close, now: datetime) -> list[EventData]:
    return [Closed(note=c.note)]


class Reopen(Command):
    command: Literal["reopen"] = "reopen"
    reason: ShortText


def _guard_reopen(s: EscalationState, now: datetime) -> None:
    if s.status not in (Status.RESOLVED, Status.CLOSED) or s.resolved_at is None:
        raise DomainError(
            "reopen.not_resolved", f"case {s.case_id} is {s.status.value}; only a resolved or closed case is reopened"
        )
    until = s.resolved_at + s.policy.reopen_window
    if now >= until:
        raise DomainError("reopen.window_closed", f"the reopen window ended at {until.isoformat()}")


@register(
    Reopen,
    roles=STAFF,
    route="reopen",
    guard=_guard_reopen,
    recorded_by=Reopened,
    replay=lambda d, f: Reopen(**f, reason=d.reason),
)
def _reopen(s: EscalationState, c: Reopen, now: datetime) -> list[EventData]:
    return [Reopened(reason=c.reason)]


class Withdraw(Command):
    """Withdraw a case opened in error (a duplicate, invalid) or withdrawn by the customer. A resolved case
    (compensation may have been paid) is withdrawn only with ``override_reason``, recorded with it."""

    command: Literal["withdraw"] = "withdraw"
    reason: WithdrawReason
    note: ShortText | None = None
    override_reason: ShortText | None = None


def _guard_withdraw(s: EscalationState, now: datetime) -> None:
    if s.status not in ACTIVE and s.status != Status.RESOLVED:
        raise DomainError("withdraw.case_not_active", f"case {s.case_id} is {s.status.value}; it cannot be withdrawn")


@register(
    Withdraw,
    roles=SENIOR,
    route="withdraw",
    guard=_guard_withdraw,
    recorded_by=Withdrawn,
    replay=lambda d, f: Withdraw(**f, reason=d.reason, note=d.note, override_reason=d.override_reason),
)
def _withdraw(s: EscalationState, c: Withdraw, now: datetime) -> list[EventData]:
    if s.status == Status.RESOLVED and c.override_reason is None:
        raise DomainError(
            "withdraw.resolved_needs_override",
            f"case {s.case_id} is resolved (compensation paid: {s.compensation_paid}); withdrawing it needs "
            "an override_reason, recorded with the withdrawal",
        )
    # Withdrawal ends any wait; the pause is closed so paused time is exact.
    return [*resumed_now(s, now), Withdrawn(reason=c.reason, note=c.note, override_reason=c.override_reason)]
