"""Resolving a case: the proposal, its compensation's approval, management sign-off, the customer's answer."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from workflows.core.command_registry import Command, register
from workflows.core.commands_handling import resumed_now
from workflows.core.errors import DomainError
from workflows.core.events import (
    Compensation,
    CompensationDecided,
    CustomerResponded,
    EventData,
    LongText,
    ResolutionProposed,
    Resolved,
    ShortText,
    SignedOff,
)
from workflows.core.permissions import SENIOR, STAFF
from workflows.core.state import EscalationState, Status
from workflows.core.vocabulary import RootCause


class ProposeResolution(Command):
    command: Literal["propose_resolution"] = "propose_resolution"
    summary: LongText
    root_cause: RootCause
    root_cause_text: ShortText
    compensation: Compensation | None = None


def _guard_propose_resolution(s: EscalationState, now: datetime) -> None:
    if s.status == Status.OPEN:
        raise DomainError("propose_resolution.not_acknowledged", "acknowledge the case before proposing a resolution")
    if s.status != Status.IN_PROGRESS:
        raise DomainError(
            "propose_resolution.not_in_progress",
            f"case {s.case_id} is {s.status.value}; a proposal needs work in progress",
        )


@register(
    ProposeResolution,
    roles=STAFF,
    route="propose-resolution",
    guard=_guard_propose_resolution,
    recorded_by=ResolutionProposed,
    replay=lambda d, f: ProposeResolution(
        **f, summary=d.summary, root_cause=d.root_cause, root_cause_text=d.root_cause_text, compensation=d.compensation
    ),
)
def _propose_resolution(s: EscalationState, c: ProposeResolution, now: datetime) -> list[EventData]:
    rules = s.policy.compensation
    needs_approval = c.compensation is not None and c.compensation.amount > rules.threshold_for(c.compensation.currency)
    return [
        ResolutionProposed(
            summary=c.summary,
            root_cause=c.root_cause,
            root_cause_text=c.root_cause_text,
            compensation=c.compensation,
            needs_compensation_approval=needs_approval,
            needs_sign_off=s.policy.rules(s.priority).sign_off,
            proposed_by=c.actor.id,
        )
    ]


class DecideCompensation(Command):
    command: Literal["decide_compensation"] = "decide_compensation"
    approved: bool
    reason: ShortText | None = None


def _guard_decide_compensation(s: EscalationState, now: datetime) -> None:
    if s.proposal is None or not s.proposal.awaiting_compensation_approval:
        raise DomainError("decide_compensation.nothing_awaiting", "no proposed compensation is awaiting approval")


@register(
    DecideCompensation,
    roles=SENIOR,
    route="decide-compensation",
    guard=_guard_decide_compensation,
    recorded_by=CompensationDecided,
    replay=lambda d, f: DecideCompensation(**f, approved=d.approved, reason=d.reason),
)
def _decide_compensation(s: EscalationState, c: DecideCompensation, now: datetime) -> list[EventData]:
    assert s.proposal is not None and s.proposal.compensation is not None  # the guard refused otherwise
    amount = s.proposal.compensation.amount
    if c.approved:
        if s.proposal.proposed_by is not None and c.actor.id == s.proposal.proposed_by:
            raise DomainError(
                "decide_compensation.four_eyes",
                f"{c.actor.id} proposed this compensation and may not approve it; another person must",
            )
        limit = s.policy.compensation.approval_limits.get(c.actor.role)
        if limit is not None and amount > limit:
            raise DomainError(
                "decide_compensation.over_limit",
                f"role {c.actor.role.value!r} may approve up to {limit} {s.proposal.compensation.currency}; "
                f"this is {amount}",
            )
    return [
        CompensationDecided(approved=c.approved, amount=s.proposal.compensation.amount, by=c.actor.id, reason=c.reason)
    ]


class SignOff(Command):
    command: Literal["sign_off"] = "sign_off"


def _guard_sign_off(s: EscalationState, now: datetime) -> None:
    if s.proposal is None or not s.proposal.awaiting_sign_off:
        raise DomainError("sign_off.nothing_awaiting", "no proposed resolution is awaiting management sign-off")


@register(
    SignOff,
    roles=SENIOR,
    route="sign-off",
    guard=_guard_sign_off,
    recorded_by=SignedOff,
    replay=lambda d, f: SignOff(**f),
)
def _sign_off(s: EscalationState, c: SignOff, now: datetime) -> list[EventData]:
    return [SignedOff(by=c.actor.id)]


class RecordCustomerResponse(Command):
    command: Literal["customer_response"] = "customer_response"
    accepted: bool
    comment: ShortText | None = None


def _guard_customer_response(s: EscalationState, now: datetime) -> None:
    if s.status != Status.RESOLUTION_PROPOSED or s.proposal is None:
        raise DomainError("customer_response.no_proposal", "there is no proposed resolution for the customer to answer")
    if s.proposal.awaiting_compensation_approval:
        raise DomainError(
            "customer_response.awaiting_compensation_approval", "the proposed compensation must be approved first"
        )
    if s.proposal.awaiting_sign_off:
        raise DomainError("customer_response.awaiting_sign_off", "the proposal needs management sign-off first")


@register(
    RecordCustomerResponse,
    roles=STAFF,
    route="customer-response",
    guard=_guard_customer_response,
    recorded_by=CustomerResponded,
    replay=lambda d, f: RecordCustomerResponse(**f, accepted=d.accepted, comment=d.comment),
)
def _customer_response(s: EscalationState, c: RecordCustomerResponse, now: datetime) -> list[EventData]:
    assert s.proposal is not None  # the guard refused otherwise
    responded = CustomerResponded(accepted=c.accepted, comment=c.comment)
    if not c.accepted:
        return [responded]
    paid = s.proposal.compensation.amount if s.proposal.compensation is not None else Decimal(0)
    # Resolution ends any wait; the pause is closed first so paused time is exact.
    return [*resumed_now(s, now), responded, Resolved(root_cause=s.proposal.root_cause, compensation_paid=paid)]
