"""Changing the policy of an open case: keep, rebase, retroactive; what moved is recorded; history untouched."""

from __future__ import annotations

from datetime import timedelta

import pytest

from samples.cases import AGENT, DEFAULT_POLICY, MANAGER, Case, command
from workflows.core.commands import ChangePolicy, Withdraw
from workflows.core.errors import DomainError
from workflows.core.events import PolicyChanged
from workflows.core.evolve import fold
from workflows.core.policy import Policy
from workflows.core.vocabulary import DeadlineKind, PolicyChangeMode, WithdrawReason

M = timedelta(minutes=1)
ACK, RESOLVE = DeadlineKind.ACKNOWLEDGE, DeadlineKind.RESOLVE


def slower_policy() -> Policy:
    """The default policy with P1's acknowledge doubled to 30 minutes and resolve to 2 days."""
    content = DEFAULT_POLICY.content()
    content["label"] = "slower P1"
    content["priorities"]["P1"] = {**content["priorities"]["P1"], "acknowledge": "PT30M", "resolve": "P2D"}
    return Policy.model_validate(content)


def change(target: Policy, mode: PolicyChangeMode, *, actor=MANAGER, **overrides) -> ChangePolicy:  # noqa: ANN001
    fields = dict(mode=mode, policy_hash=target.content_hash(), policy=target.content(), reason="new SLA contract")
    fields.update(overrides)
    return command(ChangePolicy, actor=actor, **fields)


def test_retroactive_recomputes_the_clocks_from_their_starts_and_records_what_moved() -> None:
    case = Case()  # sev1 strategic: P1, acknowledge within 15 minutes
    opened_at, old_hash = case.now, case.s.policy_hash
    old_ack, old_resolve = case.s.clocks[ACK].due_at, case.s.clocks[RESOLVE].due_at
    before = list(case.events)
    new = slower_policy()
    [changed] = case.do(change(new, PolicyChangeMode.RETROACTIVE), after=5 * M)
    assert isinstance(changed, PolicyChanged)
    assert case.s.policy_hash == new.content_hash() != old_hash
    assert case.s.clocks[ACK].due_at == opened_at + 30 * M
    assert case.s.clocks[RESOLVE].due_at == opened_at + timedelta(days=2)
    moved = {m.kind: (m.from_due, m.to_due) for m in changed.moved}
    assert moved == {ACK: (old_ack, opened_at + 30 * M), RESOLVE: (old_resolve, opened_at + timedelta(days=2))}
    # The earlier events are untouched, and the state as of before the change has the old rules.
    assert case.events[: len(before)] == before
    as_of_before = fold(case.events[: len(before)])
    assert as_of_before.policy_hash == old_hash and as_of_before.clocks[ACK].due_at == old_ack
    assert case.refold() == case.s


def test_rebase_restarts_the_running_clocks_now_under_the_new_rules() -> None:
    case = Case()
    new = slower_policy()
    [changed] = case.do(change(new, PolicyChangeMode.REBASE), after=10 * M)
    assert case.s.clocks[ACK].due_at == case.now + 30 * M
    assert case.s.clocks[RESOLVE].due_at == case.now + timedelta(days=2)
    assert {m.kind for m in changed.moved} == {ACK, RESOLVE}


def test_keep_records_the_decision_and_changes_no_deadline() -> None:
    case = Case()
    clocks, old_hash = case.s.clocks, case.s.policy_hash
    [changed] = case.do(change(slower_policy(), PolicyChangeMode.KEEP), after=M)
    assert changed.moved == [] and changed.policy is None
    assert case.s.clocks == clocks and case.s.policy_hash == old_hash


def test_a_breach_falls_on_the_new_instant_after_a_retroactive_change() -> None:
    case = Case()
    case.do(change(slower_policy(), PolicyChangeMode.RETROACTIVE), after=5 * M)
    fired = case.advance(40 * M)
    breaches = [e for e in fired if e.type == "escalation.deadline_breached"]
    assert [b.due_at - case.events[0].occurred_at for b in breaches] == [30 * M]


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (lambda p: change(p, PolicyChangeMode.RETROACTIVE, actor=AGENT), "permission.change_policy"),
        (lambda p: change(p, PolicyChangeMode.RETROACTIVE, policy_hash="0" * 64), "change_policy.hash_mismatch"),
        (lambda p: change(p, PolicyChangeMode.RETROACTIVE, policy={"label": "x"}), "change_policy.invalid_policy"),
        (
            lambda p: change(DEFAULT_POLICY, PolicyChangeMode.REBASE),
            "change_policy.unchanged",
        ),
    ],
    ids=["agent", "hash mismatch", "invalid content", "same version"],
)
def test_refusals_name_their_rule_and_write_nothing(make, rule: str) -> None:  # noqa: ANN001
    case = Case()
    before = list(case.events)
    with pytest.raises(DomainError) as refused:
        case.do(make(slower_policy()))
    assert refused.value.rule == rule
    assert case.events == before


def test_a_withdrawn_case_takes_no_new_policy() -> None:
    case = Case()
    case.do(command(Withdraw, actor=MANAGER, reason=WithdrawReason.DUPLICATE))
    with pytest.raises(DomainError) as refused:
        case.do(change(slower_policy(), PolicyChangeMode.RETROACTIVE))
    assert refused.value.rule == "case.withdrawn"
