"""Which events notify whom: the policy's ``[notifications]`` rules, and the pure choice they make.

A rule names the moment (``on``), optional priorities it applies to, who hears it (``to``: recipient specs)
and optionally the channels (else each person's own preferences). ``notices_for`` turns one recorded event,
seen against what the outbox knows of its case (``CaseSnapshot``), into the notices the rules ask for;
who the specs name is resolved by the caller from the record (responders the events recorded) and from the
directory.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from workflows.core.durations import parse_duration
from workflows.core.responder_specs import RESPONDER_SPEC
from workflows.core.vocabulary import Priority


class NotifyOn(StrEnum):
    CASE_OPENED = "case_opened"
    ASSIGNED = "assigned"
    ESCALATION_REQUESTED = "escalation_requested"
    REQUEST_DECLINED = "request_declined"
    WARNING = "warning"
    BREACH = "breach"
    ESCALATED = "escalated"
    COMPENSATION_AWAITING_APPROVAL = "compensation_awaiting_approval"
    SIGN_OFF_AWAITING = "sign_off_awaiting"
    FOLLOW_UP_DUE = "follow_up_due"
    EXECUTIVE_UPDATE_OVERDUE = "executive_update_overdue"


class Channel(StrEnum):
    EMAIL = "email"
    CHAT = "chat"
    INBOX = "inbox"
    WEBHOOK = "webhook"  # a level's ``notify`` targets (signed webhooks), not a person's channel


# Beside the responder specs (workflows/core/policy.py): the people the case's events name.
#   level_responders       who answers at the case's level now (as recorded when it got there)
#   next_level_responders  who would answer one level up (resolved from the directory now)
#   requester              who asked for the escalation that was declined
#   approvers              the team's escalation manager and the category's director (compensation)
EXTRA_RECIPIENTS = ("level_responders", "next_level_responders", "requester", "approvers")
RECIPIENT_SPEC = RESPONDER_SPEC.replace("^(", "^(level_responders|next_level_responders|requester|approvers|", 1)
RecipientSpec = Annotated[str, Field(pattern=RECIPIENT_SPEC)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NotificationRule(_Frozen):
    on: NotifyOn
    to: Annotated[list[RecipientSpec], Field(min_length=1)]
    priority: list[Priority] = []  # empty: every priority
    channels: list[Channel] = []  # empty: each recipient's preferences


class NotificationRules(_Frozen):
    rules: list[NotificationRule] = []
    # A delivery still failing this long after it was queued is a dead letter (re-drive it by hand).
    give_up_after: Annotated[timedelta, BeforeValidator(parse_duration), Field(gt=timedelta(0))] = timedelta(hours=24)
    # The P1 override: quiet hours never hold back a notification about a case of these priorities.
    quiet_hours_override: list[Priority] = [Priority.P1]


class CaseSnapshot(_Frozen):
    """What the outbox keeps of a case to address its notices (folded from its events)."""

    case_id: str
    title: str
    priority: Priority
    level: int = 1
    owner: str | None = None
    team: str | None = None
    customer_id: str
    customer_name: str
    category: str
    level_responders: list[str] = []
    requester: str | None = None


class Notice(_Frozen):
    """One moment to tell people about: its kind, who (specs), through which channels, and what to say."""

    on: NotifyOn
    to: list[str]
    channels: list[Channel]
    subject: str
    facts: dict[str, Any] = {}


def notices_for(rules: NotificationRules, on: NotifyOn, case: CaseSnapshot, subject: str, **facts: Any) -> list[Notice]:
    """The notices ``rules`` ask for when ``on`` happens to ``case``, one per matching rule."""
    return [
        Notice(on=on, to=list(rule.to), channels=list(rule.channels), subject=subject, facts=facts)
        for rule in rules.rules
        if rule.on == on and (not rule.priority or case.priority in rule.priority)
    ]
