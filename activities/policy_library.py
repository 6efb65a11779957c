"""The policies this worker process knows, by content hash: how a workflow finds its case's policy when its
history names only the hash.

A case pins its policy at opening. Temporal's history used to carry that policy twice in full (the local
activity that fetched it, and the opening event echoed back by the append), about 7.5 KiB of a case's
13 KiB. Now the opening's local activity returns a reference (label and sha256 of the canonical content)
and puts the policy here and in the ``pinned_policies`` table first; the workflow takes the policy from
here by hash. That is deterministic because the content is addressed by its hash: whatever worker replays
the case, whenever, finds the same bytes or nothing. Finding nothing raises ``PolicyNotFound``, which fails
the workflow task; Temporal retries the task and the case waits, unless the worker was built to fail
workflows on any exception (the tests' workers are, so that a bug fails its test).

A worker loads every pinned policy when it starts. One pinned later by another worker, for a case this
worker then replays (its opener died), is read by the installed loader from the ``pinned_policies`` table,
on the workflow task's thread, and kept. The library never forgets: a process sees a handful of policy
versions in its life.

Imported through the sandbox's pass-through, so every workflow of the process shares the one library.
"""

from __future__ import annotations

from collections.abc import Callable

from workflows.core.policy import Policy

# hash -> policy; written by the opening's activity and by loads, read by workflow code.
_KNOWN: dict[str, Policy] = {}
_loader: Callable[[str], Policy | None] | None = None


class PolicyNotFound(RuntimeError):
    """No policy with this content hash is known to the process or its loader.

    Deliberately not a Temporal ``ApplicationError``: raised in workflow code, it fails the workflow
    task (retried by Temporal), not the case (see the module's doc for the tests' workers).
    """


def remember(policy: Policy, content_hash: str | None = None) -> str:
    """Know ``policy`` from now on; its content hash (computed unless given)."""
    content_hash = content_hash or policy.content_hash()
    _KNOWN.setdefault(content_hash, policy)
    return content_hash


def install_loader(loader: Callable[[str], Policy | None] | None) -> None:
    """Where ``policy_for`` looks for a hash it does not know (the worker installs the store's): it returns the
    policy pinned under the hash, verified, or None, and raises naming what is wrong; None: nowhere to look."""
    global _loader
    _loader = loader


def policy_for(content_hash: str) -> Policy:
    """The policy whose canonical content hashes to ``content_hash``, or ``PolicyNotFound``.

    A row whose content does not hash to what was asked (a tampered or corrupt row) is refused by the loader
    (``events.pinned_policies.verified``) and so here the same way, naming what was found, never used.
    """
    known = _KNOWN.get(content_hash)
    if known is not None:
        return known
    if _loader is None:
        raise PolicyNotFound(f"policy {content_hash} is not known to this worker and it has no store to ask")
    try:
        loaded = _loader(content_hash)
    except Exception as exc:  # noqa: BLE001 - whatever the store says, the task fails naming the policy
        raise PolicyNotFound(f"policy {content_hash} could not be read from the pinned_policies table: {exc}") from exc
    if loaded is None:
        raise PolicyNotFound(f"policy {content_hash} is in neither this worker nor the pinned_policies table")
    found = loaded.content_hash()  # the loader verified it; checked again here, for any loader, at no cost
    if found != content_hash:
        raise PolicyNotFound(f"the loader's policy for {content_hash} is a policy whose hash is {found}")
    return _KNOWN.setdefault(content_hash, loaded)


def known() -> dict[str, Policy]:
    """Every policy known to the process now, by hash (a copy)."""
    return dict(_KNOWN)


def forget_all() -> None:
    """Forget every policy (tests: a process that has seen none)."""
    _KNOWN.clear()
