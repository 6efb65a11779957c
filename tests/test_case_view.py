"""The view readers get of a case: every field of the state but the pinned policy and the idempotency
bookkeeping, and deadlines the server computed on the case's own calendar (working hours, pauses)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from samples.cases import Case, command
from workflows.core.case_view import CaseView, case_view
from workflows.core.commands import Acknowledge, AddNote, Pause, Resume
from workflows.core.state import EscalationState
from workflows.core.vocabulary import DeadlineKind
from workflows.policy_files import load_policy

BUSINESS = load_policy(Path(__file__).parent / "policies" / "business.toml")
NEW_YORK = ZoneInfo("America/New_York")


def test_the_view_has_every_state_field_but_the_policy_and_the_idempotency_bookkeeping() -> None:
    bookkeeping = {"policy", "command_keys", "command_digests"}
    assert set(CaseView.model_fields) == (set(EscalationState.model_fields) - bookkeeping) | {
        "deadlines",
        "opened_with_key",
        "opened_with_digest",
    }


def test_the_view_does_not_grow_with_the_number_of_commands() -> None:
    """Each command's reply carries the view, and Temporal keeps every reply in the case's history: a view
    that grew with each command made that history grow quadratically (and a replay after a worker died with it)."""
    case = Case()
    case.do(command(AddNote, text="a note"))
    early = len(case_view(case.s).model_dump_json())
    for i in range(200):
        case.do(command(AddNote, text=f"note {i}"))
    assert len(case_view(case.s).model_dump_json()) <= early + 10  # the version's digits, nothing per command


def test_the_view_names_the_opening_so_an_opening_sent_again_is_recognised() -> None:
    case = Case()
    opening = case.events[0]
    view = case_view(case.s)
    assert (view.opened_with_key, view.opened_with_digest) == (opening.command_key, opening.command_digest)


def test_a_business_hours_deadline_opened_friday_1755_is_due_monday_1100_in_the_view() -> None:
    friday = datetime(2026, 11, 6, 17, 55, tzinfo=NEW_YORK).astimezone(UTC)  # a Friday, after the 17:00 close
    case = Case(BUSINESS, start=friday)
    view = case_view(case.s)
    acknowledge = next(d for d in view.deadlines if d.kind == DeadlineKind.ACKNOWLEDGE)
    # 2 working hours from Monday 09:00; not Friday 19:55 as elapsed time would say.
    assert acknowledge.due_at == datetime(2026, 11, 9, 11, 0, tzinfo=NEW_YORK)
    assert acknowledge.due_at == case.s.clocks[DeadlineKind.ACKNOWLEDGE].due_at


def test_a_paused_deadline_is_suspended_and_its_due_instant_moves_by_the_paused_time() -> None:
    case = Case()
    case.do(command(Acknowledge), after=timedelta(minutes=5))
    before = {d.kind: d.due_at for d in case_view(case.s).deadlines}
    case.do(command(Pause, reason="waiting_on_customer"), after=timedelta(minutes=10))
    case.advance(timedelta(hours=2))
    paused = {d.kind: d for d in case_view(case.s).deadlines}
    assert (
        paused[DeadlineKind.RESOLVE].suspended
        and not paused[DeadlineKind.RESOLVE].due_at < before[DeadlineKind.RESOLVE]
    )


def test_a_view_equals_itself_after_a_round_trip_through_json() -> None:
    case = Case(BUSINESS, start=datetime(2026, 11, 6, 14, 0, tzinfo=UTC))
    view = case_view(case.s)
    assert CaseView.model_validate_json(view.model_dump_json()) == view
    assert "policy" not in view.model_dump()


def test_a_30_day_resolution_target_on_business_hours_ends_within_30_calendar_days(tmp_path: Path) -> None:
    text = (Path(__file__).parent / "policies" / "business.toml").read_text()
    assert 'resolve = "3d"' in text
    path = tmp_path / "thirty.toml"
    path.write_text(text.replace('resolve = "3d"', 'resolve = "30d"', 1))
    start = datetime(2026, 11, 6, 14, 0, tzinfo=UTC)
    case = Case(load_policy(path), start=start)
    resolve = case.s.clocks[DeadlineKind.RESOLVE]
    assert resolve.calendar is not None and resolve.length == timedelta(days=30)  # 30 days of working time...
    assert resolve.due_at == start + timedelta(days=30)  # ...capped at 30 calendar days (it was ~135)
    warning = resolve.warning_at(case.s.policy.warning_at)
    assert warning == start + timedelta(days=30) * case.s.policy.warning_at  # the warning keeps its lead
    # Paused time still moves the capped target by the working time it covered.
    case.do(command(Acknowledge), after=timedelta(minutes=5))
    case.do(command(Pause, reason="waiting_on_customer"))
    case.advance(timedelta(days=3))
    case.do(command(Resume))
    moved = case.s.clocks[DeadlineKind.RESOLVE].due_at
    assert start + timedelta(days=30) < moved <= start + timedelta(days=33)
    # A one-minute pause moves the capped target by one minute, not to the next working day.
    case.do(command(Pause, reason="waiting_on_customer"), after=timedelta(hours=1))
    case.do(command(Resume), after=timedelta(minutes=1))
    assert case.s.clocks[DeadlineKind.RESOLVE].due_at - moved <= timedelta(minutes=1)


def test_a_view_written_by_another_version_still_reads() -> None:
    """A reply Temporal answers again, an API reply stored before a deploy or one from a worker not yet
    upgraded may carry fields this version dropped (the bookkeeping) or lack the ones it added."""
    view = case_view(Case().s)
    older = view.model_dump(mode="json", exclude={"opened_with_key", "opened_with_digest"})
    older |= {"command_keys": {"k": [1]}, "command_digests": {"k": "0" * 64}}
    read = CaseView.model_validate(older)
    assert read.case_id == view.case_id and read.opened_with_key is None
