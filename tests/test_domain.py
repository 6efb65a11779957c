"""The pure core: one test (at least) per transition arm, and the rules that refuse."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from samples.cases import AUDITOR, DEFAULT_POLICY, EXECUTIVE, MANAGER, SERVICE, T0, Case, command
from workflows.core.commands import (
    Acknowledge,
    AddNote,
    AssignOwner,
    AttachSignal,
    ChangePriority,
    Close,
    CompleteFollowUp,
    DeadlineReached,
    DecideCompensation,
    DeclineEscalation,
    DeEscalate,
    Escalate,
    Pause,
    ProposeResolution,
    RecordCustomerResponse,
    Reopen,
    RequestEscalation,
    Resume,
    SignOff,
    Withdraw,
)
from workflows.core.decide import decide
from workflows.core.errors import DomainError
from workflows.core.events import Actor, Compensation, Customer, DeadlineBreached, EarlyWarningSignal, Escalated
from workflows.core.idempotency import repeated_versions
from workflows.core.state import Status
from workflows.core.vocabulary import (
    CompensationKind,
    CustomerTier,
    DeadlineKind,
    EscalationCause,
    NoteVisibility,
    PauseReason,
    Priority,
    Role,
    RootCause,
    Severity,
    SignalKind,
    SourceKind,
    WithdrawReason,
)

H, D, M = timedelta(hours=1), timedelta(days=1), timedelta(minutes=1)


def refused(case: Case, cmd, rule: str, *, after: timedelta = timedelta(0)) -> None:
    """The command is refused with ``rule`` and the case is unchanged."""
    before = (case.s, len(case.events))
    with pytest.raises(DomainError) as info:
        case.do(cmd, after=after)
    assert info.value.rule == rule, str(info.value)
    assert rule in str(info.value)
    assert (case.s, len(case.events)) == before if after == timedelta(0) else len(case.events) >= before[1]


def proposal(**kw) -> ProposeResolution:
    fields = dict(summary="Rolled back release 42.", root_cause=RootCause.PRODUCT_DEFECT, root_cause_text="bad deploy")
    fields.update(kw)
    return command(ProposeResolution, **fields)


def acknowledged(**open_fields) -> Case:
    case = Case(**open_fields)
    case.do(command(Acknowledge), after=5 * M)
    return case


# ----------------------------------------------------------------- open


@pytest.mark.parametrize(
    ("severity", "tier", "priority"),
    [
        (Severity.SEV1, CustomerTier.STRATEGIC, Priority.P1),
        (Severity.SEV1, CustomerTier.STANDARD, Priority.P2),
        (Severity.SEV3, CustomerTier.ENTERPRISE, Priority.P3),
        (Severity.SEV4, CustomerTier.STANDARD, Priority.P4),
    ],
)
def test_open_takes_priority_from_the_matrix_and_pins_the_policy(severity, tier, priority) -> None:
    case = Case(severity=severity, customer=Customer(id="c1", name="C", tier=tier))
    opened = case.events[0].data
    assert opened.priority == case.s.priority == priority
    assert opened.policy_hash == case.s.policy.content_hash() and len(opened.policy_hash) == 64
    assert case.s.status == Status.OPEN and case.s.level == 1


def test_open_priority_override_is_recorded_with_its_reason() -> None:
    case = Case(priority_override=Priority.P3, override_reason="customer asked for low urgency")
    assert case.s.priority == Priority.P3
    assert case.events[0].data.priority_override_reason == "customer asked for low urgency"


def test_open_override_without_reason_is_refused() -> None:
    with pytest.raises(DomainError, match="open.override_needs_reason"):
        Case(priority_override=Priority.P3)


def test_open_from_early_warning_needs_the_signal() -> None:
    with pytest.raises(DomainError, match="open.early_warning_needs_signal"):
        Case(source=SourceKind.EARLY_WARNING, actor=SERVICE)
    case = Case(
        source=SourceKind.EARLY_WARNING, actor=SERVICE, signal=EarlyWarningSignal(kind=SignalKind.USAGE_DROP, value=0.4)
    )
    assert case.s.source == SourceKind.EARLY_WARNING


def test_an_auditor_may_not_open_a_case() -> None:
    with pytest.raises(DomainError, match="permission.open"):
        Case(actor=AUDITOR)


def test_malformed_commands_are_refused_by_the_model() -> None:
    with pytest.raises(ValidationError):
        command(CompleteFollowUp, satisfaction=9)
    with pytest.raises(ValidationError):
        command(AddNote, text="")
    with pytest.raises(ValidationError):
        command(AddNote, text="x", colour="red")


# ----------------------------------------------------------------- ownership and acknowledgement


def test_reassignment_counts_a_handoff_but_the_first_assignment_does_not() -> None:
    case = Case()
    case.do(command(AssignOwner, owner="bob"))
    assert case.s.handoffs == 0 and case.s.owner == "bob"
    case.do(command(AssignOwner, owner="carol", reason="needs billing expertise"))
    assert case.s.handoffs == 1 and case.events[-1].data.previous_owner == "bob"
    refused(case, command(AssignOwner, owner="carol"), "assign.already_owner")


def test_acknowledge_stops_the_acknowledge_clock_and_starts_the_update_cadence() -> None:
    case = acknowledged()
    assert case.s.status == Status.IN_PROGRESS
    assert DeadlineKind.ACKNOWLEDGE not in case.s.clocks
    assert case.s.clocks[DeadlineKind.UPDATE].due_at == case.now + 4 * H
    refused(case, command(Acknowledge), "acknowledge.not_open")


def test_a_service_may_not_acknowledge() -> None:
    refused(Case(), command(Acknowledge, actor=SERVICE), "permission.acknowledge")


# ----------------------------------------------------------------- notes and update cadence


def test_customer_update_restarts_the_update_cadence_but_an_internal_note_does_not() -> None:
    case = acknowledged()
    due = case.s.clocks[DeadlineKind.UPDATE].due_at
    case.do(command(AddNote, text="looking into it"), after=H)
    assert case.s.clocks[DeadlineKind.UPDATE].due_at == due
    case.do(command(AddNote, visibility=NoteVisibility.EXECUTIVE_UPDATE, text="ETA 2h"), after=H)
    assert case.s.clocks[DeadlineKind.UPDATE].due_at == case.now + 4 * H
    assert case.s.last_update_at == case.now


def test_a_missed_update_is_a_breach_and_the_cadence_re_arms() -> None:
    case = acknowledged()
    due = case.s.clocks[DeadlineKind.UPDATE].due_at
    fired = case.advance(4 * H + M)
    breach = [e for e in fired if isinstance(e, DeadlineBreached)]
    assert [(b.kind, b.due_at) for b in breach] == [(DeadlineKind.UPDATE, due)]
    assert case.s.clocks[DeadlineKind.UPDATE].due_at == due + 4 * H


# ----------------------------------------------------------------- escalation path


def test_request_then_decline_records_the_gentle_no() -> None:
    case = Case()
    case.do(command(RequestEscalation, actor=SERVICE, reason="customer wants a director"))
    assert case.s.pending_request.wanted_level == 2
    refused(case, command(RequestEscalation, reason="again"), "request_escalation.already_pending")
    refused(case, command(DeclineEscalation, reason="in hand"), "permission.decline_escalation")
    case.do(command(DeclineEscalation, actor=MANAGER, reason="L1 has a fix within the hour"))
    assert case.s.pending_request is None and case.s.declined_requests == 1
    refused(case, command(DeclineEscalation, actor=MANAGER, reason="x"), "decline_escalation.nothing_pending")


def test_escalating_a_pending_request_records_cause_request_and_clears_it() -> None:
    case = Case()
    case.do(command(RequestEscalation, reason="please", wanted_level=3))
    case.do(command(Escalate, to_level=3))
    event = case.events[-1].data
    assert isinstance(event, Escalated) and event.cause == EscalationCause.REQUEST and event.to_level == 3
    assert case.s.pending_request is None and case.s.level == 3


def test_manual_escalation_of_an_unacknowledged_case_gives_the_new_level_a_full_acknowledge_span() -> None:
    case = Case()
    case.do(command(Escalate), after=10 * M)
    assert case.s.level == 2 and case.events[-1].data.cause == EscalationCause.MANUAL
    assert case.s.clocks[DeadlineKind.ACKNOWLEDGE].due_at == case.now + 15 * M


def test_escalation_beyond_the_top_is_refused() -> None:
    case = Case()
    case.do(command(Escalate, to_level=4))
    refused(case, command(Escalate), "escalate.already_at_top")
    refused(case, command(RequestEscalation, reason="more"), "request_escalation.already_at_top")


def test_escalation_to_a_lower_level_is_refused() -> None:
    case = Case()
    case.do(command(Escalate, to_level=3))
    refused(case, command(Escalate, to_level=2), "escalate.level_out_of_range")


def test_de_escalation_needs_a_manager_and_a_level_to_go_down_to() -> None:
    case = Case()
    refused(case, command(DeEscalate, actor=MANAGER, reason="calm"), "de_escalate.already_at_bottom")
    case.do(command(Escalate, to_level=3))
    refused(case, command(DeEscalate, reason="calm"), "permission.de_escalate")
    case.do(command(DeEscalate, actor=MANAGER, reason="fix deployed"))
    assert case.s.level == 2


# ----------------------------------------------------------------- pause


def test_pause_moves_the_resolution_deadline_by_exactly_the_paused_time() -> None:
    case = acknowledged()
    due = case.s.clocks[DeadlineKind.RESOLVE].due_at
    case.do(command(Pause, reason=PauseReason.WAITING_ON_CUSTOMER, note="logs requested"), after=H)
    refused(case, command(Pause, reason=PauseReason.WAITING_ON_THIRD_PARTY), "pause.already_paused")
    case.do(command(Resume), after=5 * H + 7 * M)
    assert case.s.clocks[DeadlineKind.RESOLVE].due_at == due + 5 * H + 7 * M
    assert case.s.paused_seconds == (5 * H + 7 * M).total_seconds()
    refused(case, command(Resume), "resume.not_paused")


def test_pause_does_not_stop_the_acknowledge_clock() -> None:
    case = Case()
    ack_due = case.s.clocks[DeadlineKind.ACKNOWLEDGE].due_at
    case.do(command(Pause, reason=PauseReason.WAITING_ON_THIRD_PARTY))
    fired = case.advance(16 * M)
    assert any(isinstance(e, DeadlineBreached) and e.due_at == ack_due for e in fired)


def test_no_update_or_resolve_deadline_fires_while_paused() -> None:
    case = acknowledged()
    case.do(command(Pause, reason=PauseReason.WAITING_ON_CUSTOMER))
    fired = case.advance(10 * D)
    assert fired == []


# ----------------------------------------------------------------- priority


def test_change_priority_recomputes_deadlines_from_their_start() -> None:
    case = Case()
    opened = case.s.opened_at
    case.do(command(ChangePriority, actor=MANAGER, to_priority=Priority.P3, reason="workaround found"), after=5 * M)
    assert case.s.clocks[DeadlineKind.ACKNOWLEDGE].due_at == opened + 4 * H
    assert case.s.clocks[DeadlineKind.RESOLVE].due_at == opened + 14 * D
    refused(
        case, command(ChangePriority, actor=MANAGER, to_priority=Priority.P3, reason="x"), "change_priority.unchanged"
    )
    refused(case, command(ChangePriority, to_priority=Priority.P1, reason="x"), "permission.change_priority")


# ----------------------------------------------------------------- resolution


def test_propose_resolution_needs_an_acknowledged_case() -> None:
    refused(Case(), proposal(), "propose_resolution.not_acknowledged")


def test_compensation_above_threshold_needs_a_manager_approval_before_the_customer_answers() -> None:
    case = acknowledged(severity=Severity.SEV3)  # strategic sev3 -> P2: sign-off required
    case.do(proposal(compensation=Compensation(kind=CompensationKind.CREDIT, amount=Decimal("2500"))))
    assert case.s.proposal.awaiting_compensation_approval and case.s.proposal.awaiting_sign_off
    refused(case, command(RecordCustomerResponse, accepted=True), "customer_response.awaiting_compensation_approval")
    refused(case, command(DecideCompensation, approved=True), "permission.decide_compensation")
    case.do(command(DecideCompensation, actor=MANAGER, approved=True))
    refused(case, command(RecordCustomerResponse, accepted=True), "customer_response.awaiting_sign_off")
    refused(case, command(SignOff), "permission.sign_off")
    case.do(command(SignOff, actor=EXECUTIVE))
    case.do(command(RecordCustomerResponse, accepted=True, comment="thanks"))
    assert case.s.status == Status.RESOLVED and case.s.compensation_paid == Decimal("2500")
    assert case.types()[-2:] == ["customer_responded", "resolved"]


def test_compensation_within_threshold_needs_no_approval() -> None:
    case = acknowledged(severity=Severity.SEV4)  # strategic sev4 -> P3: no sign-off
    case.do(proposal(compensation=Compensation(kind=CompensationKind.REFUND, amount=Decimal("200"))))
    assert not case.s.proposal.awaiting_compensation_approval
    refused(case, command(DecideCompensation, actor=MANAGER, approved=True), "decide_compensation.nothing_awaiting")
    refused(case, command(SignOff, actor=MANAGER), "sign_off.nothing_awaiting")
    case.do(command(RecordCustomerResponse, accepted=True))
    assert case.s.status == Status.RESOLVED


def test_rejected_compensation_sends_the_case_back_to_work() -> None:
    case = acknowledged(severity=Severity.SEV4)
    case.do(proposal(compensation=Compensation(kind=CompensationKind.REFUND, amount=Decimal("5000"))))
    case.do(command(DecideCompensation, actor=MANAGER, approved=False, reason="too high"))
    assert case.s.status == Status.IN_PROGRESS and case.s.proposal is None


def test_customer_rejection_reopens_work_and_counts() -> None:
    case = acknowledged(severity=Severity.SEV4)
    case.do(proposal())
    case.do(command(RecordCustomerResponse, accepted=False, comment="still broken"))
    assert case.s.status == Status.IN_PROGRESS and case.s.customer_rejections == 1
    refused(case, command(RecordCustomerResponse, accepted=True), "customer_response.no_proposal")


def test_accepting_while_paused_closes_the_pause_first() -> None:
    case = acknowledged(severity=Severity.SEV4)
    case.do(proposal())
    case.do(command(Pause, reason=PauseReason.WAITING_ON_CUSTOMER))
    case.do(command(RecordCustomerResponse, accepted=True), after=2 * H)
    assert case.types()[-3:] == ["resumed", "customer_responded", "resolved"]
    assert case.s.paused is None and case.s.paused_seconds == 2 * 3600


def resolved_case() -> Case:
    case = acknowledged(severity=Severity.SEV4)  # P3: follow up 14 days after resolution
    case.do(proposal())
    case.do(command(RecordCustomerResponse, accepted=True))
    return case


def test_follow_up_becomes_due_after_the_delay_and_records_satisfaction() -> None:
    case = resolved_case()
    refused(case, command(CompleteFollowUp, satisfaction=4), "follow_up.not_yet_due")
    fired = case.advance(14 * D)
    assert [e.type for e in fired] == ["escalation.follow_up_due"]
    case.do(command(CompleteFollowUp, satisfaction=4, comment="happy"))
    assert case.s.satisfaction == 4
    refused(case, command(CompleteFollowUp, satisfaction=5), "follow_up.already_done")


def test_close_needs_a_resolved_case_and_a_closed_case_accepts_only_reopen() -> None:
    refused(acknowledged(), command(Close), "close.not_resolved")
    case = resolved_case()
    case.do(command(Close, note="done"))
    assert case.s.status == Status.CLOSED
    refused(case, command(AddNote, text="late note"), "case.closed")
    case.do(command(Reopen, reason="issue is back"), after=2 * D)
    assert case.s.status == Status.IN_PROGRESS and case.s.reopen_count == 1
    assert case.s.clocks[DeadlineKind.RESOLVE].due_at == case.now + 14 * D


def test_reopen_after_the_window_is_refused() -> None:
    case = resolved_case()
    case.do(command(Close))
    refused(case, command(Reopen, reason="too late"), "reopen.window_closed", after=31 * D)
    refused(acknowledged(), command(Reopen, reason="x"), "reopen.not_resolved")


def test_withdraw_needs_a_manager_and_then_nothing_is_accepted() -> None:
    case = Case()
    refused(case, command(Withdraw, reason=WithdrawReason.DUPLICATE), "permission.withdraw")
    case.do(command(Withdraw, actor=MANAGER, reason=WithdrawReason.DUPLICATE, note="see case-1"))
    assert case.s.status == Status.WITHDRAWN and case.s.clocks == {}
    refused(case, command(AddNote, text="x"), "case.withdrawn")


def test_attach_signal_records_an_early_warning_signal() -> None:
    case = Case()
    case.do(command(AttachSignal, actor=SERVICE, signal=EarlyWarningSignal(kind=SignalKind.TICKET_SPIKE, value=12)))
    assert case.s.signals == 1


# ----------------------------------------------------------------- deadlines


def test_unacknowledged_p1_escalates_one_level_per_missed_acknowledge_then_repeats_at_the_top() -> None:
    case = Case()
    fired = case.advance(3 * H)
    breaches = [e for e in fired if isinstance(e, DeadlineBreached)]
    escalations = [e for e in fired if isinstance(e, Escalated)]
    assert [(e.from_level, e.to_level) for e in escalations] == [(1, 2), (2, 3), (3, 4)]
    due = [b.due_at - T0 for b in breaches]
    # 15m per level, then hourly at the top.
    assert due == [15 * M, 30 * M, 45 * M, 60 * M, 2 * H, 3 * H]
    assert [b.level for b in breaches] == [1, 2, 3, 4, 4, 4]


def test_warnings_fire_before_each_breach_at_the_configured_fraction() -> None:
    case = Case()
    fired = case.advance(16 * M)
    assert [e.type.removeprefix("escalation.") for e in fired] == ["deadline_warning", "deadline_breached", "escalated"]
    warning_events = [e for e in case.events if e.data.type == "escalation.deadline_warning"]
    assert warning_events[0].occurred_at == T0 + timedelta(seconds=15 * 60 * 0.75)


def test_a_case_open_thirty_days_breaches_its_resolution_target() -> None:
    case = acknowledged(
        severity=Severity.SEV4, customer=Customer(id="small", name="Small Co", tier=CustomerTier.STANDARD)
    )
    assert case.s.priority == Priority.P4
    fired = case.advance(30 * D)
    resolve = [e for e in fired if isinstance(e, DeadlineBreached) and e.kind == DeadlineKind.RESOLVE]
    assert [b.due_at for b in resolve] == [T0 + 30 * D]
    assert case.s.level == 2


def test_deadlines_missed_during_an_outage_are_each_enforced_once_in_order_with_their_true_due_at() -> None:
    case = Case()
    # One tick long after everything fell due (as after a long worker outage).
    case.now = T0 + 2 * H + 30 * M
    fired = decide(case.s, DeadlineReached(), case.now)
    breaches = [e for e in fired if isinstance(e, DeadlineBreached) and e.kind == DeadlineKind.ACKNOWLEDGE]
    assert [b.due_at - T0 for b in breaches] == [15 * M, 30 * M, 45 * M, 60 * M, 2 * H]
    assert all(b.detected_at == case.now for b in breaches)


def test_state_is_the_fold_of_its_events() -> None:
    case = resolved_case()
    case.advance(20 * D)
    assert case.refold() == case.s


def test_a_repeated_command_is_a_redelivery_and_a_reused_key_for_another_request_is_refused() -> None:
    case = Case()
    note = command(AddNote, text="first words")
    case.do(note)
    # The digest is what the command asks: not its key nor its tracing id, but its actor and every field.
    assert note.model_copy(update={"idempotency_key": "k-other", "correlation_id": "trace-1"}).digest() == note.digest()
    assert repeated_versions(case.s, note) == [2]
    assert repeated_versions(case.s, command(AddNote, text="first words")) is None  # a new key
    for other in (note.model_copy(update={"text": "other"}), note.model_copy(update={"actor": MANAGER})):
        with pytest.raises(DomainError) as refused:
            repeated_versions(case.s, other)
        assert refused.value.rule == "idempotency.key_reused"


def test_a_resolved_case_is_withdrawn_only_with_a_recorded_override() -> None:
    from workflows.core.commands import Acknowledge, ProposeResolution, RecordCustomerResponse, SignOff, Withdraw

    case = Case(severity=Severity.SEV4)  # no sign-off at P4
    case.do(command(Acknowledge))
    case.do(command(ProposeResolution, summary="s", root_cause="other", root_cause_text="t"))
    if case.s.proposal and case.s.proposal.awaiting_sign_off:
        case.do(command(SignOff, actor=MANAGER))
    case.do(command(RecordCustomerResponse, accepted=True))
    assert case.s.status == "resolved"
    with pytest.raises(DomainError) as refused:
        case.do(command(Withdraw, actor=MANAGER, reason="duplicate"))
    assert refused.value.rule == "withdraw.resolved_needs_override"
    case.do(command(Withdraw, actor=MANAGER, reason="duplicate", override_reason="opened twice by the CRM sync"))
    assert case.s.status == "withdrawn"
    assert case.events[-1].data.override_reason == "opened twice by the CRM sync"


def test_a_closed_case_takes_its_follow_up_once_it_is_due() -> None:
    from workflows.core.commands import (
        Acknowledge,
        Close,
        CompleteFollowUp,
        ProposeResolution,
        RecordCustomerResponse,
        SignOff,
    )

    case = Case(severity=Severity.SEV4)
    case.do(command(Acknowledge))
    case.do(command(ProposeResolution, summary="s", root_cause="other", root_cause_text="t"))
    if case.s.proposal and case.s.proposal.awaiting_sign_off:
        case.do(command(SignOff, actor=MANAGER))
    case.do(command(RecordCustomerResponse, accepted=True))
    case.do(command(Close), after=timedelta(hours=1))  # close first, as the handbook says
    assert case.s.status == "closed"
    refused(case, command(CompleteFollowUp, satisfaction=4), "follow_up.not_yet_due")
    case.advance(case.s.policy.rules(case.s.priority).follow_up)
    case.do(command(CompleteFollowUp, satisfaction=4))
    assert case.s.status == "closed" and case.s.satisfaction == 4
    refused(case, command(CompleteFollowUp, satisfaction=5), "follow_up.already_done")


def test_compensation_needs_four_eyes_and_an_approver_whose_limit_covers_it() -> None:
    from decimal import Decimal

    from workflows.core.commands import Acknowledge, DecideCompensation, ProposeResolution
    from workflows.core.events import Compensation

    def proposed(amount: int, currency: str = "USD", by=MANAGER) -> Case:  # noqa: ANN001
        case = Case()
        case.do(command(Acknowledge))
        compensation = Compensation(kind="credit", amount=Decimal(amount), currency=currency)
        case.do(
            command(
                ProposeResolution,
                actor=by,
                summary="s",
                root_cause="other",
                root_cause_text="t",
                compensation=compensation,
            )
        )
        return case

    own = proposed(5000)
    assert own.s.proposal is not None and own.s.proposal.awaiting_compensation_approval
    refused(own, command(DecideCompensation, actor=MANAGER, approved=True), "decide_compensation.four_eyes")
    own.do(command(DecideCompensation, actor=EXECUTIVE, approved=True))  # another person
    large = proposed(25_000, by=EXECUTIVE)
    refused(large, command(DecideCompensation, actor=MANAGER, approved=True), "decide_compensation.over_limit")
    large.do(command(DecideCompensation, actor=Actor(id="evan", role=Role.EXECUTIVE), approved=True))
    euros = proposed(950, currency="EUR")  # over the EUR threshold of 900, under the default 1000
    assert euros.s.proposal is not None and euros.s.proposal.awaiting_compensation_approval
    dollars = proposed(950)
    assert dollars.s.proposal is not None and not dollars.s.proposal.awaiting_compensation_approval


def test_a_corrected_severity_recomputes_the_priority_with_the_reason_and_facts_are_recorded() -> None:
    from workflows.core.commands import CorrectFacts

    case = Case(severity=Severity.SEV3)  # strategic x sev3 -> P2
    assert case.s.priority == Priority.P2
    case.do(command(CorrectFacts, reason="the outage is total", severity=Severity.SEV1, title="Checkout fully down"))
    assert case.types()[-2:] == ["facts_corrected", "priority_changed"]
    assert case.s.severity == Severity.SEV1 and case.s.priority == Priority.P1 and case.s.title == "Checkout fully down"
    assert "severity corrected sev3 -> sev1" in case.events[-1].data.reason
    refused(case, command(CorrectFacts, reason="again", severity=Severity.SEV1), "correct_facts.nothing_changed")
    refused(case, command(CorrectFacts, actor=AUDITOR, reason="r", title="x"), "permission.correct_facts")

    overridden = Case(severity=Severity.SEV3, priority_override=Priority.P1, override_reason="board member")
    overridden.do(command(CorrectFacts, reason="minor after all", severity=Severity.SEV4))
    assert overridden.s.priority == Priority.P1 and overridden.types()[-1] == "facts_corrected"


def test_a_pause_reminds_before_its_maximum_then_resumes_itself_exactly_at_it() -> None:
    from workflows.core.commands import Acknowledge, Pause
    from workflows.core.policy import Policy

    content = DEFAULT_POLICY.content()
    content["pauses"] = {"max": {"waiting_on_customer": "2d"}, "remind_before": "4h", "before_acknowledge": False}
    policy = Policy.model_validate(content)
    assert policy.content_hash() != DEFAULT_POLICY.content_hash()

    early = Case(policy)
    refused(early, command(Pause, reason="waiting_on_customer"), "pause.not_acknowledged")
    case = Case(policy, severity=Severity.SEV4)
    case.do(command(Acknowledge), after=timedelta(minutes=1))
    before = case.s.clocks[DeadlineKind.RESOLVE].due_at
    case.do(command(Pause, reason="waiting_on_customer"), after=timedelta(minutes=1))
    since = case.now
    case.advance(timedelta(days=3))
    kinds = case.types()
    assert "pause_expiring" in kinds and kinds.index("pause_expiring") < kinds.index("resumed")
    reminder = next(e for e in case.events if e.data.type == "escalation.pause_expiring")
    assert reminder.occurred_at == since + timedelta(hours=44)
    resumed = next(e for e in case.events if e.data.type == "escalation.resumed")
    assert resumed.data.automatic and resumed.data.paused_seconds == 2 * 86400
    assert case.s.paused is None
    assert case.s.clocks[DeadlineKind.RESOLVE].due_at == before + timedelta(days=2)
    assert DEFAULT_POLICY.content().get("pauses") is None  # a policy without pause rules keeps its content
