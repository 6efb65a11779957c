"""The closed vocabularies shared by commands, events, policy and read models.

Each is a ``StrEnum`` so the stored JSON carries the plain, stable string.
Adding a member is backwards compatible; renaming or removing one is not
(stored events would no longer parse).
"""

from enum import StrEnum


class Severity(StrEnum):
    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"


class CustomerTier(StrEnum):
    STRATEGIC = "strategic"
    ENTERPRISE = "enterprise"
    STANDARD = "standard"


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class Category(StrEnum):
    TECHNICAL = "technical"
    BILLING = "billing"
    FUNCTIONAL = "functional"
    DELIVERY = "delivery"
    CONTRACTUAL = "contractual"
    OTHER = "other"


class LifecycleStage(StrEnum):
    PRE_SALES = "pre_sales"
    CONTRACTING = "contracting"
    ONBOARDING = "onboarding"
    ONGOING_SUPPORT = "ongoing_support"


class SourceKind(StrEnum):
    CUSTOMER = "customer"
    EMPLOYEE = "employee"
    SERVICE = "service"
    EARLY_WARNING = "early_warning"


class Role(StrEnum):
    AGENT = "agent"
    MANAGER = "manager"
    EXECUTIVE = "executive"
    SERVICE = "service"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SYSTEM = "system"


class NoteVisibility(StrEnum):
    INTERNAL = "internal"
    CUSTOMER_UPDATE = "customer_update"
    EXECUTIVE_UPDATE = "executive_update"


class EscalationCause(StrEnum):
    MANUAL = "manual"
    REQUEST = "request"
    BREACH = "breach"


class PauseReason(StrEnum):
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    WAITING_ON_THIRD_PARTY = "waiting_on_third_party"


class PolicyChangeMode(StrEnum):
    """How an open case takes a new policy version (``change_policy``)."""

    KEEP = "keep"  # stay on the pinned version; the decision is recorded
    REBASE = "rebase"  # the new rules from now on: running clocks restart now with the new spans
    RETROACTIVE = "retroactive"  # as if the new rules had always applied: clocks recomputed from their starts


class DeadlineKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    UPDATE = "update"
    RESOLVE = "resolve"
    FOLLOW_UP = "follow_up"


class RootCause(StrEnum):
    PRODUCT_DEFECT = "product_defect"
    CONFIGURATION = "configuration"
    DOCUMENTATION = "documentation"
    PROCESS = "process"
    STAFFING = "staffing"
    BILLING_ERROR = "billing_error"
    THIRD_PARTY = "third_party"
    COMMUNICATION = "communication"
    EXPECTATION_MISMATCH = "expectation_mismatch"
    OTHER = "other"


class CompensationKind(StrEnum):
    REFUND = "refund"
    CREDIT = "credit"


class WithdrawReason(StrEnum):
    DUPLICATE = "duplicate"
    INVALID = "invalid"
    CUSTOMER_WITHDREW = "customer_withdrew"


class SignalKind(StrEnum):
    USAGE_DROP = "usage_drop"
    HELP_SEARCHES = "help_searches"
    DETRACTOR_SCORE = "detractor_score"
    TICKET_SPIKE = "ticket_spike"
    CUSTOM = "custom"


class RoutingStrategy(StrEnum):
    LEAST_ACTIVE = "least_active"  # the member working now with the fewest active cases
    ROUND_ROBIN = "round_robin"  # the member routed to least recently
    QUEUE = "queue"  # the team's queue: no owner until someone takes it
