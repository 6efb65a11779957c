"""Opening a case: the one command addressed to no existing case (its handler takes the policy, not a state)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from workflows.core.command_registry import Command
from workflows.core.directory import CaseFactsForRouting, OpeningContext, customer_for, responders_for, route_case
from workflows.core.errors import DomainError
from workflows.core.events import (
    NO_CALENDAR,
    CaseId,
    Customer,
    CustomerInput,
    EarlyWarningSignal,
    EventData,
    LongText,
    Opened,
    ShortText,
)
from workflows.core.permissions import STAFF_AND_SERVICE
from workflows.core.policy import Policy
from workflows.core.vocabulary import Category, CustomerTier, LifecycleStage, Priority, Severity, SourceKind

OPEN_ROLES = STAFF_AND_SERVICE


def _as_customer_input(value: Any) -> Any:
    return value.model_dump() if isinstance(value, Customer) else value


class OpenEscalation(Command):
    command: Literal["open"] = "open"
    case_id: CaseId
    # A full ``Customer`` (as recorded by an opening) is accepted as well.
    customer: Annotated[CustomerInput, BeforeValidator(_as_customer_input)]
    category: Category
    lifecycle_stage: LifecycleStage
    severity: Severity
    title: ShortText
    description: LongText
    source: SourceKind
    priority_override: Priority | None = None
    override_reason: ShortText | None = None
    signal: EarlyWarningSignal | None = None


def open_case(command: OpenEscalation, policy: Policy, context: OpeningContext | None = None) -> list[EventData]:
    """The opening event under ``policy`` (whose content is pinned into it); the role is checked by the caller.

    ``context`` is what the directory said (see ``OpeningContext``): the stored account completes a customer
    sent by id, and, under a policy with routing rules, the route (team, owner, level-1 responders) is
    decided from it and recorded in the event. Without it the case still gets its team, unowned.
    """
    context = context or OpeningContext()
    if (command.priority_override is None) != (command.override_reason is None):
        raise DomainError("open.override_needs_reason", "a priority override needs an override_reason, and vice versa")
    if command.source == SourceKind.EARLY_WARNING and command.signal is None:
        raise DomainError("open.early_warning_needs_signal", "an early-warning escalation must carry its signal")
    customer = customer_for(command.customer, context.account)
    priority = command.priority_override or policy.priority_for(command.severity, customer.tier, customer.annual_value)
    wanted = customer.calendar
    if wanted is not None and wanted not in policy.calendars:
        raise DomainError(
            "open.unknown_calendar",
            f"customer calendar {wanted!r} is not one the policy defines ({', '.join(sorted(policy.calendars)) or 'none'})",
        )
    calendar = policy.calendar_name_for(wanted)
    route = None
    if policy.routing is not None:
        route = route_case(policy, routing_facts(command, customer.tier, priority), context.team)
        route = route.model_copy(update={"responders": responders_for(policy.level(1), context.level_one)})
    return [
        Opened(
            case_id=command.case_id,
            customer=customer,
            category=command.category,
            lifecycle_stage=command.lifecycle_stage,
            severity=command.severity,
            priority=priority,
            priority_override_reason=command.override_reason,
            title=command.title,
            description=command.description,
            source=command.source,
            requested_by=command.actor.id,
            signal=command.signal,
            policy_label=policy.label,
            policy_hash=policy.content_hash(),
            policy=policy.content(),
            calendar=calendar or NO_CALENDAR,
            route=route,
        )
    ]


def routing_facts(command: OpenEscalation, tier: CustomerTier, priority: Priority) -> CaseFactsForRouting:
    """The facts of a new case that routing rules match on."""
    return CaseFactsForRouting(
        category=command.category,
        severity=command.severity,
        priority=priority,
        tier=tier,
        lifecycle_stage=command.lifecycle_stage,
        customer_id=command.customer.id,
    )


def replay_open(d: Opened, fields: dict[str, Any]) -> OpenEscalation:
    """The opening command an ``Opened`` event records (a shadow run's first step)."""
    return OpenEscalation(
        **fields,
        case_id=d.case_id,
        customer=CustomerInput.model_validate(d.customer.model_dump()),
        category=d.category,
        lifecycle_stage=d.lifecycle_stage,
        severity=d.severity,
        title=d.title,
        description=d.description,
        source=d.source,
        priority_override=d.priority if d.priority_override_reason else None,
        override_reason=d.priority_override_reason,
        signal=d.signal,
    )
