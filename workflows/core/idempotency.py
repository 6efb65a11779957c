"""Idempotency keys (invariant 9 of docs/architecture.md): a command sent again changes nothing; a key reused for another request is refused.

Pure: the answer comes from the state, which folds each stored event's ``command_key`` and
``command_digest``, so it holds across continue-as-new, where Temporal's update-id dedup does not reach.
"""

from __future__ import annotations

from workflows.core.case_view import CaseView
from workflows.core.commands import Command
from workflows.core.errors import DomainError
from workflows.core.state import EscalationState

KEY_REUSED = "idempotency.key_reused"


def repeated_versions(state: EscalationState, command: Command) -> list[int] | None:
    """The versions ``command``'s key stored, if ``command`` repeats that request; None if the key is new.

    Raises ``DomainError`` (``idempotency.key_reused``) when the key's events record a different request.
    Events stored before digests were recorded carry none; a repeat of such a key is taken as a redelivery.
    """
    versions = state.command_keys.get(command.idempotency_key)
    if versions is None:
        return None
    recorded = state.command_digests.get(command.idempotency_key)
    if recorded is not None and recorded != command.digest():
        raise DomainError(
            KEY_REUSED,
            f"idempotency key {command.idempotency_key!r} already recorded a different request "
            f"(versions {versions}); a new request needs a new key",
        )
    return versions


def check_opening_sent_again(view: CaseView, opening: Command) -> None:
    """Raise ``DomainError`` (``idempotency.key_reused``) if ``view``'s case was opened under ``opening``'s
    key by a different request; return if it is this very opening or another key opened it."""
    if view.opened_with_key != opening.idempotency_key:
        return
    if view.opened_with_digest is not None and view.opened_with_digest != opening.digest():
        raise DomainError(
            KEY_REUSED,
            f"idempotency key {opening.idempotency_key!r} already opened this case with a different request; "
            "a new request needs a new key",
        )
