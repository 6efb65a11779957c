"""Moving an open case to another policy version (keep, rebase or retroactive)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from workflows.core.command_registry import Command, register, require_active
from workflows.core.errors import DomainError
from workflows.core.events import DeadlineMove, EventData, PolicyChanged, PolicyHash, ShortText
from workflows.core.evolve import fold_provisionally
from workflows.core.permissions import SENIOR
from workflows.core.policy import Policy
from workflows.core.state import EscalationState
from workflows.core.vocabulary import DeadlineKind, PolicyChangeMode


class ChangePolicy(Command):
    """Move an open case to another policy version; ``policy`` is that version's content
    (``escalations policy show HASH``), checked against ``policy_hash``."""

    command: Literal["change_policy"] = "change_policy"
    mode: PolicyChangeMode
    policy_hash: PolicyHash
    policy: dict[str, Any]
    reason: ShortText


def _guard_change_policy(s: EscalationState, now: datetime) -> None:
    require_active(s, "change_policy.case_not_active")


def _due(s: EscalationState, kind: DeadlineKind) -> datetime | None:
    clock = s.clocks.get(kind)
    return clock.due_at if clock is not None else None


@register(
    ChangePolicy,
    roles=SENIOR,
    route="change-policy",
    guard=_guard_change_policy,
    recorded_by=PolicyChanged,
    not_replayed="a shadow run keeps the candidate policy in force throughout: that is its question",
)
def _change_policy(s: EscalationState, c: ChangePolicy, now: datetime) -> list[EventData]:
    try:
        policy = Policy.model_validate(c.policy)
    except ValidationError as exc:
        raise DomainError("change_policy.invalid_policy", f"the policy content is not a valid policy: {exc}") from None
    if policy.content_hash() != c.policy_hash:
        raise DomainError(
            "change_policy.hash_mismatch",
            f"the policy content hashes to {policy.content_hash()}, not the {c.policy_hash} named",
        )
    if c.policy_hash == s.policy_hash:
        raise DomainError("change_policy.unchanged", f"case {s.case_id} is already on policy {c.policy_hash[:12]}")
    if s.calendar is not None and s.calendar not in policy.calendars:
        raise DomainError(
            "change_policy.calendar_missing",
            f"case {s.case_id} runs on calendar {s.calendar!r}, which policy {c.policy_hash[:12]} does not define",
        )
    keep = c.mode == PolicyChangeMode.KEEP
    changed = PolicyChanged(
        mode=c.mode,
        from_hash=s.policy_hash,
        to_hash=c.policy_hash,
        policy_label=policy.label,
        policy=None if keep else policy.content(),
        reason=c.reason,
    )
    after = fold_provisionally(s, [changed], now)
    moved = [
        DeadlineMove(kind=kind, from_due=_due(s, kind), to_due=_due(after, kind))
        for kind in sorted(set(s.clocks) | set(after.clocks))
        if _due(s, kind) != _due(after, kind)
    ]
    return [changed.model_copy(update={"moved": moved})]
