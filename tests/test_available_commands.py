"""What the console offers a role is what ``decide`` would accept (same guards, same permissions)."""

from __future__ import annotations

import pytest

from samples.cases import MANAGER, Case, command
from tests.test_domain import proposal
from workflows.core.commands import PERMISSIONS, Acknowledge, Close, RecordCustomerResponse, SignOff
from workflows.core.decide import available_commands
from workflows.core.errors import DomainError
from workflows.core.vocabulary import Role


def offered(case: Case, role: Role) -> set[str]:
    return set(available_commands(case.s, role, case.now))


def test_an_open_case_offers_acknowledge_but_nothing_that_needs_progress() -> None:
    case = Case()
    agent = offered(case, Role.AGENT)
    assert {"acknowledge", "assign", "add_note", "pause", "escalate", "request_escalation"} <= agent
    assert not {"resume", "close", "sign_off", "propose_resolution", "reopen", "follow_up"} & agent
    # Senior-only commands are not offered to an agent, but are to a manager.
    assert "withdraw" not in agent and "withdraw" in offered(case, Role.MANAGER)


def test_readers_and_the_system_are_offered_nothing() -> None:
    case = Case()
    assert offered(case, Role.AUDITOR) == set()
    assert offered(case, Role.SYSTEM) == set()


def test_the_offer_follows_the_lifecycle() -> None:
    case = Case()
    case.do(command(Acknowledge))
    assert "acknowledge" not in offered(case, Role.AGENT)
    assert "propose_resolution" in offered(case, Role.AGENT)
    case.do(proposal())
    # This priority needs a manager's sign-off before the customer can answer.
    assert "customer_response" not in offered(case, Role.AGENT)
    assert "sign_off" in offered(case, Role.MANAGER) and "sign_off" not in offered(case, Role.AGENT)
    case.do(command(SignOff, actor=MANAGER))
    assert "customer_response" in offered(case, Role.AGENT)
    case.do(command(RecordCustomerResponse, accepted=True))
    assert "close" in offered(case, Role.AGENT)
    case.do(command(Close))
    assert offered(case, Role.AGENT) == {"reopen"}


def test_offered_means_decide_accepts_and_unoffered_means_decide_refuses() -> None:
    case = Case()
    for role in (Role.AGENT, Role.MANAGER, Role.SERVICE, Role.AUDITOR):
        permitted = {name for name, roles in PERMISSIONS.items() if role in roles}
        assert set(available_commands(case.s, role, case.now)) <= permitted
    assert "acknowledge" in offered(case, Role.AGENT)
    case.do(command(Acknowledge))
    assert "acknowledge" not in offered(case, Role.AGENT)
    with pytest.raises(DomainError) as refused:
        case.do(command(Acknowledge))
    assert refused.value.rule == "acknowledge.not_open"
