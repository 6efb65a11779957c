"""The escalation policy: priority matrix, deadlines, escalation matrix, thresholds.

Pure: reading a policy file is ``workflows.policy_files``'s job. A policy is
identified by the sha256 of its canonical JSON content, and the whole validated
content is pinned into each case's opening event (invariant 10 of docs/architecture.md), so a case
keeps the rules it was opened under even when the file changes.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from workflows.core.calendar import BusinessCalendar
from workflows.core.canonical import canonical_json, sha256_hex
from workflows.core.durations import Duration
from workflows.core.notification_rules import NotificationRules
from workflows.core.personal_data import PersonalDataRules
from workflows.core.responder_specs import ENTRY_ID_PATTERN, ResponderSpec
from workflows.core.vocabulary import (
    Category,
    CustomerTier,
    LifecycleStage,
    PauseReason,
    Priority,
    Role,
    RoutingStrategy,
    Severity,
    SignalKind,
)

MAX_RESOLUTION = timedelta(days=30)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PriorityRules(_Frozen):
    acknowledge: Duration
    update_every: Duration | None = None
    resolve: Duration
    follow_up: Duration
    sign_off: bool = False
    # "24x7": deadlines run in elapsed time; "business": in the case's working calendar.
    clock: Literal["24x7", "business"] = "24x7"


class Level(_Frozen):
    level: Annotated[int, Field(ge=1)]
    name: str
    role: Role
    notify: list[str] = []
    # Who answers here, in order; ``fallback`` answers when they resolve to nobody.
    responders: list[ResponderSpec] = []
    fallback: list[ResponderSpec] = []

    @model_serializer(mode="wrap")
    def _without_unset_responders(self, handler: Any) -> Any:
        # A policy that names no responders keeps the content (and so the hash) it had before they existed.
        content = handler(self)
        for name in ("responders", "fallback"):
            if isinstance(content, dict) and not content.get(name):
                content.pop(name, None)
        return content


class EscalationRules(_Frozen):
    repeat_at_top: Duration
    levels: list[Level]

    @model_validator(mode="after")
    def _levels_are_ordered(self) -> EscalationRules:
        numbers = [lvl.level for lvl in self.levels]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"escalation levels must be numbered 1..n in order, got {numbers}")
        return self


class CompensationRules(_Frozen):
    """Compensation above the threshold (per currency, else ``approval_threshold``) needs approval by a role
    whose limit covers it (a role without a limit may approve any amount), and never by its proposer."""

    approval_threshold: Annotated[Decimal, Field(ge=0)]
    thresholds: dict[Annotated[str, Field(pattern=r"^[A-Z]{3}$")], Annotated[Decimal, Field(ge=0)]] = {}
    approval_limits: dict[Role, Annotated[Decimal, Field(ge=0)]] = {}

    @model_serializer(mode="wrap")
    def _without_unset_rules(self, handler: Any) -> Any:
        # A policy that sets neither keeps the content (and so the hash) it had before they existed.
        content = handler(self)
        for name in ("thresholds", "approval_limits"):
            if isinstance(content, dict) and not content.get(name):
                content.pop(name, None)
        return content

    def threshold_for(self, currency: str) -> Decimal:
        return self.thresholds.get(currency, self.approval_threshold)


class PauseRules(_Frozen):
    """How long a case may wait, per reason: a reminder ``remind_before`` the end, then an automatic,
    recorded resume. ``before_acknowledge``: whether an unacknowledged case may be paused at all."""

    max: dict[PauseReason, Duration] = {}
    remind_before: Duration = timedelta(hours=4)
    before_acknowledge: bool = True


# The default pause rules, built once: the policy's serializer compares with them at every dump.
_DEFAULT_PAUSES = PauseRules()


class SystemicRules(_Frozen):
    min_cases: Annotated[int, Field(ge=1)] = 3
    min_customers: Annotated[int, Field(ge=1)] = 2
    window: Duration = timedelta(days=30)


class SignalRule(_Frozen):
    """An early-warning signal of ``kind`` whose value crosses a bound opens a proactive case."""

    kind: SignalKind
    at_least: float | None = None
    at_most: float | None = None
    severity: Severity = Severity.SEV3

    def triggered_by(self, kind: SignalKind, value: float) -> bool:
        if kind != self.kind:
            return False
        return (self.at_least is None or value >= self.at_least) and (self.at_most is None or value <= self.at_most)


class EarlyWarningRules(_Frozen):
    category: Category = Category.TECHNICAL
    rules: list[SignalRule] = [
        SignalRule(kind=SignalKind.USAGE_DROP, at_least=0.3, severity=Severity.SEV3),
        SignalRule(kind=SignalKind.HELP_SEARCHES, at_least=20, severity=Severity.SEV4),
        SignalRule(kind=SignalKind.DETRACTOR_SCORE, at_most=6, severity=Severity.SEV3),
        SignalRule(kind=SignalKind.TICKET_SPIKE, at_least=5, severity=Severity.SEV3),
    ]

    def severity_for(self, kind: SignalKind, value: float) -> Severity | None:
        """The severity of the proactive case this signal opens, or None if it opens none."""
        hits = [rule.severity for rule in self.rules if rule.triggered_by(kind, value)]
        return min(hits) if hits else None  # sev1 < sev2 < ...: the most severe rule wins


class RoutingRule(_Frozen):
    """Cases matching every criterion given (an empty list matches anything) go to ``team``, whose owner
    ``strategy`` picks. Rules are tried in order; the first match wins."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    team: Annotated[str, Field(pattern=rf"^{ENTRY_ID_PATTERN}$")]
    strategy: RoutingStrategy = RoutingStrategy.LEAST_ACTIVE
    category: list[Category] = []
    severity: list[Severity] = []
    priority: list[Priority] = []
    tier: list[CustomerTier] = []
    lifecycle_stage: list[LifecycleStage] = []
    customer_id: list[str] = []


class RoutingRules(_Frozen):
    """Where a new case goes. No rule matching sends it to ``default_team``: a case is never unrouted."""

    default_team: Annotated[str, Field(pattern=rf"^{ENTRY_ID_PATTERN}$")]
    default_strategy: RoutingStrategy = RoutingStrategy.LEAST_ACTIVE
    rules: list[RoutingRule] = []

    @model_validator(mode="after")
    def _names_are_unique(self) -> RoutingRules:
        names = [r.name for r in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1} | ({DEFAULT_ROUTE} & set(names)))
        if duplicates:
            raise ValueError(f"routing rule names must be unique and not {DEFAULT_ROUTE!r}: {duplicates}")
        return self

    def teams(self) -> list[str]:
        """Every team a case can be routed to, the default first."""
        return list(dict.fromkeys([self.default_team, *(r.team for r in self.rules)]))


DEFAULT_ROUTE = "default"  # the rule name recorded when no rule matched


class ValueUplift(_Frozen):
    """Customers whose annual value is at least ``at_least`` get a priority ``steps`` higher than the
    matrix gives (never above P1)."""

    at_least: Annotated[Decimal, Field(gt=0)]
    steps: Annotated[int, Field(ge=1, le=3)] = 1


class Policy(_Frozen):
    label: str
    warning_at: Annotated[float, Field(gt=0, lt=1)] = 0.75
    max_resolution: Duration = MAX_RESOLUTION
    reopen_window: Duration = timedelta(days=30)
    matrix: dict[Severity, dict[CustomerTier, Priority]]
    priorities: dict[Priority, PriorityRules]
    escalation: EscalationRules
    compensation: CompensationRules
    systemic: SystemicRules = SystemicRules()
    early_warning: EarlyWarningRules = EarlyWarningRules()
    pauses: PauseRules = PauseRules()
    # Resolved working calendars by name (workflows/calendar_source.py), and the one a
    # case gets when its customer names none.
    calendars: dict[str, BusinessCalendar] = {}
    default_calendar: str | None = None
    # Who owns a new case (None: cases open unrouted, as before routing existed).
    routing: RoutingRules | None = None
    value_uplift: ValueUplift | None = None
    # Which events notify whom, and how (None: nobody is notified but the levels' webhook targets).
    notifications: NotificationRules | None = None
    # Which free texts are sealed under the customer's key, so erasing the customer erases them
    # (None: stored in the clear, as before erasure existed).
    personal_data: PersonalDataRules | None = None

    @model_serializer(mode="wrap")
    def _without_unset_sections(self, handler: Any) -> Any:
        # A policy that sets none of these keeps the content (and so the hash) it had before they existed.
        content = handler(self)
        if isinstance(content, dict):
            if self.pauses == _DEFAULT_PAUSES:
                content.pop("pauses", None)
            for name in ("routing", "value_uplift", "notifications", "personal_data"):
                if content.get(name) is None:
                    content.pop(name, None)
        return content

    @model_validator(mode="after")
    def _calendars_resolve(self) -> Policy:
        if self.default_calendar is not None and self.default_calendar not in self.calendars:
            raise ValueError(
                f"default_calendar {self.default_calendar!r} is not one of calendars {sorted(self.calendars)}"
            )
        business = [p.value for p, rules in self.priorities.items() if rules.clock == "business"]
        if business and self.default_calendar is None:
            raise ValueError(f"priorities {business} run on business time: name a default_calendar")
        return self

    @model_validator(mode="after")
    def _complete_and_bounded(self) -> Policy:
        if self.max_resolution > MAX_RESOLUTION:
            raise ValueError("max_resolution may not exceed 30 days (cases close within 30 days)")
        for severity in Severity:
            row = self.matrix.get(severity)
            if row is None or set(row) != set(CustomerTier):
                raise ValueError(
                    f"matrix.{severity.value} must name a priority for every tier {[t.value for t in CustomerTier]}"
                )
        for priority in Priority:
            rules = self.priorities.get(priority)
            if rules is None:
                raise ValueError(f"priorities.{priority.value} is missing")
            if rules.resolve > self.max_resolution:
                raise ValueError(f"priorities.{priority.value}.resolve exceeds max_resolution {self.max_resolution}")
        return self

    # -- lookups used by the domain --------------------------------------------------

    def priority_for(self, severity: Severity, tier: CustomerTier, annual_value: Decimal = Decimal(0)) -> Priority:
        """The matrix's priority, raised by ``value_uplift`` for a customer worth at least its threshold."""
        priority = self.matrix[severity][tier]
        if self.value_uplift is not None and annual_value >= self.value_uplift.at_least:
            order = list(Priority)
            priority = order[max(0, order.index(priority) - self.value_uplift.steps)]
        return priority

    def rules(self, priority: Priority) -> PriorityRules:
        return self.priorities[priority]

    def calendar_name_for(self, customer_calendar: str | None) -> str | None:
        """The calendar a case's business-time clocks use: its customer's, else the default."""
        return customer_calendar or self.default_calendar

    def clock_calendar(self, calendar_name: str | None, priority: Priority) -> BusinessCalendar | None:
        """The calendar a clock of ``priority`` runs on, or None for elapsed (24x7) time."""
        if self.rules(priority).clock != "business" or calendar_name is None:
            return None
        return self.calendars[calendar_name]

    @property
    def top_level(self) -> int:
        return len(self.escalation.levels)

    def level(self, number: int) -> Level:
        return self.escalation.levels[number - 1]

    # -- identity ----------------------------------------------------------------------

    def content(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def content_hash(self) -> str:
        """The sha256 of the canonical JSON content: the policy version's identity.

        Hashing costs a model dump and a canonical encoding (hundreds of microseconds); the policy in force is
        one object from opening to opening, so each object is hashed once. A policy is frozen and never changed
        in place, so an object's hash cannot go stale; ``model_copy`` makes a new object with a hash of its own.
        """
        known = _HASHED.get(id(self))
        if known is not None and known[0] is self:
            return known[1]
        content_hash = sha256_hex(canonical_json(self.content()))
        if len(_HASHED) >= _HASHED_LIMIT:
            _HASHED.clear()
        # The entry holds the object, so its id cannot be reused by another object while the entry stands.
        _HASHED[id(self)] = (self, content_hash)
        return content_hash


_HASHED: dict[int, tuple[Policy, str]] = {}  # id(policy) -> (the policy, kept alive; its content hash)
_HASHED_LIMIT = 64  # policy objects whose hash is remembered (a process sees a handful of versions)
_PINNED: dict[str, Policy] = {}
_PINNED_LIMIT = 64  # distinct policy versions kept parsed; a worker sees a handful


def pinned_policy(content: dict[str, Any], content_hash: str) -> Policy:
    """The policy pinned in an opening event, parsed once per content hash.

    Thousands of open cases share a few policy versions; sharing one frozen
    instance per version keeps a case's state small. A content that does not
    match its hash is parsed and returned as is, never cached, so it cannot
    stand in for the genuine version.
    """
    cached = _PINNED.get(content_hash)
    if cached is not None:
        return cached
    policy = Policy.model_validate(content)
    if policy.content_hash() == content_hash:
        if len(_PINNED) >= _PINNED_LIMIT:
            _PINNED.clear()
        _PINNED[content_hash] = policy
    return policy
