"""Generated case histories: realistic random paths through the pure domain, ready to append.

Each case is driven by the same ``decide``/``evolve`` the workflow uses, so the
events are ones the system could really have written.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from events.store import EventStore
from samples.cases import MANAGER, T0, Case, command
from workflows.core.commands import (
    Acknowledge,
    AddNote,
    AssignOwner,
    Close,
    CompleteFollowUp,
    DecideCompensation,
    DeclineEscalation,
    Escalate,
    Pause,
    ProposeResolution,
    RecordCustomerResponse,
    Reopen,
    RequestEscalation,
    Resume,
    SignOff,
    Withdraw,
)
from workflows.core.errors import DomainError
from workflows.core.events import Compensation, Customer, NewEvent
from workflows.core.state import Status
from workflows.core.vocabulary import (
    Category,
    CompensationKind,
    CustomerTier,
    LifecycleStage,
    NoteVisibility,
    PauseReason,
    RootCause,
    Severity,
    WithdrawReason,
)

M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def attempt(case: Case, cmd, after: timedelta = timedelta(0)) -> None:  # noqa: ANN001
    """Run ``cmd`` if the case still allows it (a deadline may have changed the case meanwhile)."""
    try:
        case.do(cmd, after=after)
    except DomainError:
        pass


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


def generate_case(rng: random.Random, index: int, customers: int = 300) -> list[NewEvent]:
    """One case: opened at a random instant over ~6 months, then a random but valid path."""
    customer_no = rng.randrange(customers)
    tier = [CustomerTier.STRATEGIC, CustomerTier.ENTERPRISE, CustomerTier.STANDARD][customer_no % 3]
    case = Case(
        case_id=f"gen-{index}-{rng.randrange(1 << 30):x}",
        start=T0 + timedelta(minutes=rng.randrange(0, 180 * 24 * 60)),
        customer=Customer(
            id=f"cust-{customer_no}",
            name=f"Customer {customer_no}",
            tier=tier,
            annual_value=Decimal(1000 * customer_no),
        ),
        severity=rng.choice(list(Severity)),
        category=rng.choice(list(Category)),
        lifecycle_stage=rng.choice(list(LifecycleStage)),
    )

    if rng.random() < 0.7:
        attempt(case, command(AssignOwner, owner=f"agent-{rng.randrange(20)}"), after=_minutes(rng, 0, 5))
    if rng.random() < 0.05:
        attempt(
            case, command(Withdraw, actor=MANAGER, reason=rng.choice(list(WithdrawReason))), after=_minutes(rng, 1, 60)
        )
        return case.events
    if rng.random() < 0.2:
        attempt(case, command(RequestEscalation, reason="customer asked"), after=_minutes(rng, 0, 10))
        if rng.random() < 0.5:
            attempt(case, command(DeclineEscalation, actor=MANAGER, reason="in hand"), after=_minutes(rng, 0, 30))
        else:
            attempt(case, command(Escalate), after=_minutes(rng, 0, 30))
    attempt(case, command(Acknowledge), after=_minutes(rng, 1, 90 if rng.random() < 0.8 else 600))
    if rng.random() < 0.3:
        attempt(case, command(AssignOwner, owner=f"agent-{rng.randrange(20, 40)}"), after=_minutes(rng, 5, 120))
    if rng.random() < 0.3:
        attempt(case, command(Pause, reason=rng.choice(list(PauseReason))), after=_minutes(rng, 10, 240))
        attempt(case, command(Resume), after=_minutes(rng, 30, 3000))
    for _ in range(rng.randrange(0, 3)):
        attempt(
            case,
            command(AddNote, visibility=rng.choice(list(NoteVisibility)), text="update"),
            after=_minutes(rng, 10, 600),
        )
    for round_no in range(3):
        compensation = None
        if rng.random() < 0.25:
            compensation = Compensation(
                kind=CompensationKind.CREDIT, amount=Decimal(rng.choice([100, 500, 1500, 4000]))
            )
        attempt(
            case,
            command(
                ProposeResolution,
                summary="fix",
                root_cause=rng.choice(list(RootCause)),
                root_cause_text="why",
                compensation=compensation,
            ),
            after=_minutes(rng, 30, 60 * 24 * (3 if round_no == 0 else 1)),
        )
        if case.s.proposal and case.s.proposal.awaiting_compensation_approval:
            attempt(
                case,
                command(DecideCompensation, actor=MANAGER, approved=rng.random() < 0.7),
                after=_minutes(rng, 5, 120),
            )
            if case.s.status != Status.RESOLUTION_PROPOSED:
                continue
        if case.s.proposal and case.s.proposal.awaiting_sign_off:
            attempt(case, command(SignOff, actor=MANAGER), after=_minutes(rng, 5, 120))
        accepted = rng.random() < 0.8
        attempt(case, command(RecordCustomerResponse, accepted=accepted), after=_minutes(rng, 10, 60 * 24))
        if accepted:
            break
    if case.s.status != Status.RESOLVED:
        return case.events
    case.advance(case.s.policy.rules(case.s.priority).follow_up + _minutes(rng, 1, 600))
    if rng.random() < 0.8:
        attempt(case, command(CompleteFollowUp, satisfaction=rng.randint(1, 5)), after=_minutes(rng, 0, 600))
    if rng.random() < 0.9:
        attempt(case, command(Close), after=_minutes(rng, 1, 600))
    if rng.random() < 0.08 and case.s.resolved_at and case.now < case.s.resolved_at + case.s.policy.reopen_window:
        attempt(case, command(Reopen, reason="came back"), after=M)
        attempt(
            case,
            command(
                ProposeResolution,
                summary="fix again",
                root_cause=RootCause.PRODUCT_DEFECT,
                root_cause_text="regression",
            ),
            after=_minutes(rng, 60, 600),
        )
        if case.s.proposal and case.s.proposal.awaiting_sign_off:
            attempt(case, command(SignOff, actor=MANAGER))
        attempt(case, command(RecordCustomerResponse, accepted=True), after=_minutes(rng, 10, 600))
    return case.events


async def append_history(store: EventStore, histories: list[list[NewEvent]]) -> int:
    total = 0
    for events in histories:
        await store.append(events[0].stream_id, 0, events)
        total += len(events)
    return total
