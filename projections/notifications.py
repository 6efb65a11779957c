"""The notification outbox: which people hear of which events, through which channels.

For each recorded event the projection asks the case's *pinned* policy (its ``[notifications]`` rules,
``workflows/core/notification_rules.py``) who must hear of it, resolves them (the responders the events
recorded, the rest from the directory as it is when the event is projected), picks each person's
channels (their preferences, what the directory knows of them, the rule's own channels) and writes one
``deliveries`` row per (event, recipient, channel), in the projection's transaction: an event's
notifications are queued exactly once, with the checkpoint. Quiet hours hold back email and chat (never
the inbox) until they end, unless the case's priority overrides them (P1 by default). The levels'
``notify`` webhook targets are kept: each gets a signed webhook delivery of the events that concern its
level. Sending is ``projections/delivery.py``'s.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from events.directory_store import DirectorySnapshot
from events.store import fetch_stream_before
from projections.channels import ChannelsConfig
from projections.runner import Projection
from workflows.core.directory import Person, Team, level_specs, responders_for
from workflows.core.events import (
    DeadlineBreached,
    DeadlineWarning,
    DeEscalated,
    Escalated,
    EscalationDeclined,
    EscalationRequested,
    FollowUpDue,
    Opened,
    OwnerAssigned,
    PriorityChanged,
    RecordedEvent,
    ResolutionProposed,
    case_id_of,
)
from workflows.core.evolve import evolve, fold
from workflows.core.notification_rules import CaseSnapshot, Channel, Notice, NotificationRules, NotifyOn, notices_for
from workflows.core.policy import Level
from workflows.core.state import EscalationState
from workflows.core.vocabulary import Category, DeadlineKind

# uuid5 namespace of delivery ids (fixed: changing it changes every id a receiver deduplicates on).
DELIVERIES_CHANNEL = "escalation_deliveries"
DELIVERY_NAMESPACE = uuid.UUID("2b0f3c8e-5d7a-4e61-9c4b-7a1e0d9f6a53")


def delivery_id(event_id: uuid.UUID, recipient: str, channel: str) -> uuid.UUID:
    return uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}|{recipient}|{channel}")


class NotificationOutboxProjection(Projection):
    name = "notifications"
    tables = ("notification_cases", "deliveries")
    # Delivery state is not derived from events; rebuilding would send everything again.
    rebuildable = False

    # A rebuild compares what was queued for whom (deliveries' state is not derived from events); who a
    # rule names comes from the directory when the event was projected, so a rebuild after directory
    # changes shows the difference instead of rewriting history.
    derived_columns = {
        "notification_cases": ("case_id",),
        "deliveries": ("id", "event_id", "case_id", "kind", "recipient", "channel", "address"),
    }

    def __init__(self, table_names: Mapping[str, str] | None = None, channels: ChannelsConfig | None = None) -> None:
        """``channels``: what is configured. A person hears by their preferences among the channels
        configured; a channel a rule, a team or a person names explicitly is queued even when it is not
        configured, and waits there as a configuration error (``/readyz``)."""
        super().__init__(table_names)
        self._channels = channels or ChannelsConfig()
        # A deliverer in this process takes the deliveries due now straight from here (``hand_to``).
        self._handoff: Callable[[list[asyncpg.Record]], None] | None = None
        self._lease = timedelta(0)
        self._leased: list[asyncpg.Record] = []
        self._queued = 0  # deliveries this batch queued, leased or not

    def hand_to(self, take: Callable[[list[asyncpg.Record]], None], lease: timedelta) -> None:
        """Queue each delivery that is due at once already leased (``lease``, its first attempt counted), and
        give it to ``take`` when the batch has committed: the deliverer of this process sends it without
        waiting for a wake-up and a lease round trip. Should this process die first, the lease runs out and
        any deliverer takes the row as usual."""
        self._handoff, self._lease = take, lease

    async def _queue(
        self, conn: asyncpg.Connection, event: RecordedEvent, case: _OutboxCase, kind: str, subject: str, to: Target
    ) -> None:
        """Queue one delivery to ``to``; one queued leased (a deliverer in this process) is handed over later."""
        leased = await _insert_delivery(
            self.t["deliveries"],
            conn,
            event,
            case,
            kind,
            subject,
            to,
            self._lease if self._handoff is not None else None,
        )
        self._queued += 1
        if leased is not None:
            self._leased.append(leased)

    async def apply_relevant(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        # Every step that reaches commit passes here first: what a failed step leased (its rows rolled back)
        # is dropped even when this batch holds no case event and ``apply`` does not run.
        self._leased, self._queued = [], 0
        await super().apply_relevant(conn, events)

    def committed(self) -> None:
        leased, self._leased = self._leased, []
        if leased and self._handoff is not None:
            self._handoff(leased)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        cases: dict[str, _OutboxCase] = {}  # this batch's cases as its events leave them (one read per case)
        for event in events:
            await self._one(conn, event, cases)
        if self._queued > len(self._leased):
            # Wakes the deliverers when this batch commits (they also poll, should a notification be lost).
            # Not for a batch whose deliveries all went leased to this process's deliverer (a wake-up would
            # only send it looking for rows it already has).
            await conn.execute("SELECT pg_notify($1, '')", DELIVERIES_CHANNEL)

    async def _one(self, conn: asyncpg.Connection, event: RecordedEvent, cases: dict[str, _OutboxCase]) -> None:
        data = event.data
        if isinstance(data, Opened):
            case = cases[case_id_of(event.stream_id)] = await self._remember(conn, evolve(None, event))
            await self._notify(conn, event, case, NotifyOn.CASE_OPENED, f"{data.priority.value} case opened")
            if case.snapshot.owner:
                subject = f"assigned to you ({case.snapshot.team})"
                await self._notify(conn, event, case, NotifyOn.ASSIGNED, subject)
            return
        case_id = case_id_of(event.stream_id)
        known = cases.get(case_id)
        if known is not None:
            case = known
        else:
            row = await conn.fetchrow(
                f"SELECT level_targets, snapshot, rules, levels FROM {self.t['notification_cases']} WHERE case_id = $1",
                case_id,
            )
            if row is not None and row["snapshot"] is not None:
                case = _OutboxCase.of(row)
            else:
                # A case opened before the outbox kept snapshots: fold its stream once and keep the result.
                state = fold(await fetch_stream_before(conn, event.stream_id, event.version))
                if state is None:
                    return
                case = await self._remember(conn, state)
        updated = _evolved(case.snapshot, data)
        if updated != case.snapshot:
            await conn.execute(
                f"UPDATE {self.t['notification_cases']} SET snapshot = $2, level = $3 WHERE case_id = $1",
                updated.case_id,
                updated.model_dump_json(),
                updated.level,
            )
            case = case.with_snapshot(updated)
        cases[case_id] = case
        moment = _moment(data)
        if moment is None:
            return
        on, subject, level = moment
        await self._notify(conn, event, case, on, subject)
        for target in case.targets.get(str(level or updated.level), []):
            await self._queue(conn, event, case, on.value, subject, (target, None, Channel.WEBHOOK, target))

    async def _remember(self, conn: asyncpg.Connection, state: EscalationState) -> _OutboxCase:
        """Keep what the outbox needs of a case (its snapshot, its pinned policy's rules, levels and webhook
        targets), from the case's state: at its opening, or folded from the stream of a case opened before."""
        case = _OutboxCase(
            snapshot=CaseSnapshot(
                case_id=state.case_id,
                title=state.title,
                priority=state.priority,
                level=state.level,
                owner=state.owner,
                team=state.team,
                customer_id=state.customer.id,
                customer_name=state.customer.name,
                category=state.category.value,
                level_responders=[r.id for r in state.responders],
                requester=state.pending_request.by if state.pending_request else None,
            ),
            rules=state.policy.notifications or NotificationRules(),
            levels=list(state.policy.escalation.levels),
            targets={str(level.level): level.notify for level in state.policy.escalation.levels},
        )
        await conn.execute(
            f"INSERT INTO {self.t['notification_cases']} (case_id, level, level_targets, snapshot, rules, levels) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (case_id) DO UPDATE SET level = EXCLUDED.level, "
            "level_targets = EXCLUDED.level_targets, snapshot = EXCLUDED.snapshot, rules = EXCLUDED.rules, "
            "levels = EXCLUDED.levels",
            state.case_id,
            state.level,
            json.dumps(case.targets),
            case.snapshot.model_dump_json(),
            case.rules.model_dump_json(),
            json.dumps([level.model_dump(mode="json") for level in case.levels]),
        )
        return case

    async def _notify(
        self, conn: asyncpg.Connection, event: RecordedEvent, case: _OutboxCase, on: NotifyOn, subject: str
    ) -> None:
        notices = notices_for(case.rules, on, case.snapshot, subject)
        if not notices:
            return
        specs = [spec for notice in notices for spec in notice.to]
        specs += [spec for level in case.levels for spec in level_specs(level)]
        snapshot = case.snapshot
        directory = await DirectorySnapshot.load(
            conn,
            team=snapshot.team,
            category=Category(snapshot.category),
            customer_id=snapshot.customer_id,
            specs=specs,
        )
        for notice in notices:
            for recipient, person, channels in _recipients(notice, snapshot, case.levels, directory, self._channels):
                for channel, address in channels:
                    await self._queue(conn, event, case, on.value, subject, (recipient, person, channel, address))


@dataclass(frozen=True)
class _OutboxCase:
    """What the outbox keeps of one case (a row of ``notification_cases``), parsed."""

    snapshot: CaseSnapshot
    rules: NotificationRules
    levels: list[Level]
    targets: dict[str, list[str]]  # level -> its webhook targets

    @classmethod
    def of(cls, row: asyncpg.Record) -> _OutboxCase:
        return cls(
            snapshot=CaseSnapshot.model_validate_json(row["snapshot"]),
            rules=NotificationRules.model_validate_json(row["rules"]) if row["rules"] else NotificationRules(),
            levels=[Level.model_validate(x) for x in json.loads(row["levels"] or "[]")],
            targets=json.loads(row["level_targets"]),
        )

    def with_snapshot(self, snapshot: CaseSnapshot) -> _OutboxCase:
        return _OutboxCase(snapshot=snapshot, rules=self.rules, levels=self.levels, targets=self.targets)


def _evolved(s: CaseSnapshot, data: Any) -> CaseSnapshot:
    """The snapshot after ``data`` (what the outbox needs to address later notices)."""
    match data:
        case OwnerAssigned(owner=owner, team=team):
            return s.model_copy(update={"owner": owner, "team": team or s.team})
        case Escalated(to_level=to, responders=responders) | DeEscalated(to_level=to, responders=responders):
            return s.model_copy(update={"level": to, "level_responders": [r.id for r in responders]})
        case PriorityChanged(to_priority=to):
            return s.model_copy(update={"priority": to})
        case EscalationRequested(by=by):
            return s.model_copy(update={"requester": by})
    return s


def _moment(data: Any) -> tuple[NotifyOn, str, int | None] | None:
    """(what happened, the subject line, the level whose webhook targets hear of it) for ``data``."""
    match data:
        case OwnerAssigned(owner=owner):
            return NotifyOn.ASSIGNED, f"assigned to {owner}", None
        case EscalationRequested(reason=reason, wanted_level=wanted):
            return NotifyOn.ESCALATION_REQUESTED, f"escalation to level {wanted} requested: {reason}", None
        case EscalationDeclined(reason=reason, by=by):
            return NotifyOn.REQUEST_DECLINED, f"your escalation request was declined by {by}: {reason}", None
        case DeadlineWarning(kind=kind, level=level, due_at=due):
            return NotifyOn.WARNING, f"{_deadline(kind)} due {due:%Y-%m-%d %H:%M} UTC", level
        case DeadlineBreached(kind=DeadlineKind.UPDATE, level=level, due_at=due):
            return NotifyOn.EXECUTIVE_UPDATE_OVERDUE, f"executive update overdue since {due:%Y-%m-%d %H:%M} UTC", level
        case DeadlineBreached(kind=kind, level=level, due_at=due):
            return NotifyOn.BREACH, f"{_deadline(kind)} missed (due {due:%Y-%m-%d %H:%M} UTC) at level {level}", level
        case Escalated(from_level=old, to_level=new, cause=cause):
            return NotifyOn.ESCALATED, f"escalated from level {old} to level {new} ({cause.value})", new
        case ResolutionProposed(needs_compensation_approval=True, compensation=comp) if comp is not None:
            what = f"compensation of {comp.amount} {comp.currency} awaits approval"
            return NotifyOn.COMPENSATION_AWAITING_APPROVAL, what, None
        case ResolutionProposed(needs_sign_off=True):
            return NotifyOn.SIGN_OFF_AWAITING, "a proposed resolution awaits management sign-off", None
        case FollowUpDue():
            return NotifyOn.FOLLOW_UP_DUE, "the follow-up with the customer is due", None
    return None


def _deadline(kind: DeadlineKind) -> str:
    return {"acknowledge": "acknowledgement", "update": "executive update", "resolve": "resolution"}.get(
        kind.value, kind.value.replace("_", " ")
    )


Channels = list[tuple[Channel, str]]
# Whom a delivery goes to: (recipient, their directory entry if a person, channel, address).
Target = tuple[str, "Person | None", Channel, str]


def _recipients(
    notice: Notice, case: CaseSnapshot, levels: list[Level], directory: DirectorySnapshot, config: ChannelsConfig
) -> list[tuple[str, Person | None, Channels]]:
    """(recipient, the person as the directory knows them, [(channel, address)]) for every person (or team
    chat) ``notice`` reaches."""
    out: dict[str, Channels] = {}
    for spec in notice.to:
        if spec in ("case_team",) or spec.startswith("team:"):
            team = directory.team(case.team if spec == "case_team" else spec.removeprefix("team:"))
            if team is None:
                continue
            if Channel.CHAT in notice.channels or not notice.channels:
                if team.chat_channel:
                    out.setdefault(f"team:{team.id}", [(Channel.CHAT, team.chat_channel)])
            wanted: list[Channel] = [c for c in notice.channels if c != Channel.CHAT]
            if notice.channels and not wanted:
                continue  # the rule asked for the team's chat only
            people = team.on_call or team.members
            for person in people:
                out.setdefault(person, _channels(directory.person(person), team, wanted, config))
            continue
        for person in _people(spec, case, levels, directory):
            out.setdefault(
                person, _channels(directory.person(person), directory.team(case.team), notice.channels, config)
            )
    return [(recipient, directory.person(recipient), channels) for recipient, channels in out.items() if channels]


def _people(spec: str, case: CaseSnapshot, levels: list[Level], directory: DirectorySnapshot) -> list[str]:
    if spec == "owner":
        return [case.owner] if case.owner else []
    if spec == "level_responders":
        return list(case.level_responders)
    if spec == "requester":
        return [case.requester] if case.requester else []
    category = Category(case.category)
    if spec == "next_level_responders":
        if case.level >= len(levels):
            return []
        level = levels[case.level]  # levels are numbered 1..n: index `level` is the next one
        resolved = {
            s: directory.people(s, team=case.team, owner=case.owner, category=category) for s in level_specs(level)
        }
        return [r.id for r in responders_for(level, resolved)]
    if spec == "approvers":
        specs = ["role:escalation_manager", "category:director"]
    else:
        specs = [spec]
    return [r.id for s in specs for r in directory.people(s, team=case.team, owner=case.owner, category=category)]


def _channels(person: Person | None, team: Team | None, wanted: list[Channel], config: ChannelsConfig) -> Channels:
    """The channels (and addresses) a person hears on: the rule's, else their preferences among those
    configured, as far as the directory can reach them. The inbox always can."""
    if person is None:
        return [(Channel.INBOX, "")]  # not in the directory: their inbox still holds it
    explicit = bool(wanted) or bool(person.channels)
    preferred = wanted or person.channels or [Channel.INBOX, Channel.EMAIL, Channel.CHAT]
    out: Channels = []
    for channel in preferred:
        if channel == Channel.INBOX:
            out.append((channel, person.id))
        elif channel == Channel.EMAIL and person.email and (explicit or config.smtp is not None):
            out.append((channel, person.email))
        elif channel == Channel.CHAT:
            room = person.chat_channel or (team.chat_channel if team else None)
            if room:  # a room the directory names is a reference: unconfigured, it is a configuration error
                out.append((channel, room))
    return out


async def _insert_delivery(
    table: str,
    conn: asyncpg.Connection,
    event: RecordedEvent,
    outbox_case: _OutboxCase,
    kind: str,
    subject: str,
    to: Target,
    lease: timedelta | None,
) -> asyncpg.Record | None:
    """Queue one delivery (once per event, recipient and channel). With ``lease``, one due at once is queued
    leased for that long with its first attempt counted, and returned (the caller hands it to a deliverer);
    None when it waits (quiet hours), was queued already, or no lease was asked for."""
    recipient, person, channel, address = to
    case, rules = outbox_case.snapshot, outbox_case.rules
    text = (
        f"{case.priority.value} · {case.title} · case {case.case_id} · {case.customer_name}\n"
        f"{subject}\nLevel {case.level}; team {case.team or 'none'}; owner {case.owner or 'none (team queue)'}."
    )
    message = {
        "subject": f"[{case.priority.value}] {case.title}: {subject}",
        "text": text,
        "case_id": case.case_id,
        "kind": kind,
        "level": case.level,
        "event": json.loads(event.model_dump_json(include={"type", "occurred_at", "data", "version"})),
    }
    start = event.recorded_at
    due = start
    if channel in (Channel.EMAIL, Channel.CHAT) and case.priority not in rules.quiet_hours_override:
        due = _after_quiet_hours(person, start)
    channel_name = channel.value
    if channel == Channel.CHAT and not recipient.startswith("team:"):
        # The room already hears of this event in a team message: one message per room is enough.
        told = await conn.fetchval(
            f"SELECT 1 FROM {table} WHERE event_id = $1 AND channel = 'chat' AND address = $2 "
            "AND recipient LIKE 'team:%'",
            event.event_id,
            address,
        )
        if told:
            return None
    leased = lease is not None and due <= start
    columns = "id, event_id, case_id, kind, recipient, channel, address, priority, message, created_at, next_attempt_at"
    values = [
        delivery_id(event.event_id, recipient, channel_name),
        event.event_id,
        case.case_id,
        kind,
        recipient,
        channel_name,
        address,
        case.priority.value,
        json.dumps(message),
        start,
        due,
        due + rules.give_up_after,
    ]
    if not leased:
        await conn.execute(
            f"INSERT INTO {table} ({columns}, give_up_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
            "ON CONFLICT (event_id, recipient, channel) DO NOTHING",
            *values,
        )
        return None
    return await conn.fetchrow(
        f"INSERT INTO {table} ({columns}, give_up_at, lease_until, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, "
        "$8, $9, $10, $11, $12, now() + $13::interval, 1) ON CONFLICT (event_id, recipient, channel) DO NOTHING "
        "RETURNING *",
        *values,
        lease,
    )


def _after_quiet_hours(person: Person | None, at: datetime) -> datetime:
    """``at``, or the end of the person's quiet hours if ``at`` falls within them (in their time zone)."""
    if person is None or person.quiet_hours is None:
        return at
    try:
        zone = ZoneInfo(person.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = at.astimezone(zone)
    start, end = person.quiet_hours.start, person.quiet_hours.end
    now_t = local.time()
    inside = (start <= now_t < end) if start < end else (now_t >= start or now_t < end)
    if not inside:
        return at
    end_day = local.date() if now_t < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, zone)
