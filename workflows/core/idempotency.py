"""Idempotency keys (invariant 9 of docs/architecture.md): a command sent again changes nothing; a key reused for another request is refused.

Pure: the answer comes from the state, which folds each stored event's ``command_key`` and
``command_digest``, so it holds across continue-as-new, where Temporal's update-id dedup does not reach.
"""

from __future__ import annotations

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
    _refuse_another_request(state.command_digests.get(command.idempotency_key), command, f"versions {versions}")
    return versions


def check_opening_sent_again(opened_with_key: str | None, opened_with_digest: str | None, opening: Command) -> bool:
    """Whether ``opening`` is the request that opened a case opened under ``opened_with_key`` (with
    ``opened_with_digest``): True for that very request, False if another key opened the case. Raises
    ``DomainError`` (``idempotency.key_reused``) if ``opening``'s key opened it with a different request."""
    if opened_with_key != opening.idempotency_key:
        return False
    _refuse_another_request(opened_with_digest, opening, "it opened this case")
    return True


def _refuse_another_request(recorded_digest: str | None, command: Command, what_it_recorded: str) -> None:
    """Raise ``idempotency.key_reused`` if ``command``'s key recorded a request other than ``command``
    (``recorded_digest`` None: recorded before digests were, taken as a redelivery)."""
    if recorded_digest is not None and recorded_digest != command.digest():
        raise DomainError(
            KEY_REUSED,
            f"idempotency key {command.idempotency_key!r} already recorded a different request "
            f"({what_it_recorded}); a new request needs a new key",
        )
