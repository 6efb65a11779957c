"""Case list: one row per case for operations queries, plus one row per breach.

The row is computed from the folded ``EscalationState`` (the same ``evolve``
the workflow uses) and a few facts the state does not keep (first
acknowledgement and resolution across reopens, requests, paused time by
reason). The metrics are SQL over these two tables. Readers see columns only:
the fold itself is kept in ``case_list_folds``, private to this projection, so
the next batch continues it instead of refolding the case from its first event.

A fold is stored without its policy, which it names by ``policy_hash``: the policy was most of a fold's
bytes and most of the time spent reading and writing one (a fold of a generated case: 6.5 KB, read in
~200 us and written in ~75 us with its policy; 2.7 KB, ~35 us and ~12 us without). Each policy is kept
once in ``case_list_policies``, written in the same transaction as the folds that name it. A fold
written before that (migration 0021) still carries its policy and is read as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from events.pinned_policies import verified
from projections.runner import Projection, ProjectionCannotContinue
from workflows.core.canonical import canonical_json
from workflows.core.decide import next_deadline
from workflows.core.events import DeadlineBreached, EscalationRequested, Paused, RecordedEvent, Resumed
from workflows.core.evolve import evolve
from workflows.core.policy import Policy
from workflows.core.state import EscalationState, Status, follow_up_due
from workflows.core.vocabulary import DeadlineKind, PauseReason

# A case whose follow-up is still to be recorded, once it is resolved (closing it does not end the wait).
AWAITING_FOLLOW_UP = frozenset({Status.RESOLVED, Status.CLOSED})

_FACT_COLUMNS = (
    "first_acknowledged_at",
    "first_resolved_at",
    "escalation_requests",
    "paused_customer_seconds",
    "paused_third_party_seconds",
    "pause_reason",
)


class CaseListProjection(Projection):
    name = "case_list"
    tables = ("case_list", "case_breaches", "case_list_folds", "case_list_policies")
    # The fold is this projection's working state, not a read model: a rebuild compares it by stream only
    # (a fold copied by migration 0007 lacks fields added since, which parse to their defaults).
    derived_columns = {"case_list_folds": ("stream_id",)}
    # Policies by hash for the folds: which rows it holds depends on where batches ended (a policy a case left
    # within one batch is never written), so a rebuild does not compare it; every fold's policy is in it.
    uncompared_tables = ("case_list_policies",)

    def __init__(self, table_names: Mapping[str, str] | None = None) -> None:
        super().__init__(table_names)
        # Policies by hash, read once per process: content-addressed, so never stale, and a handful in all.
        self._policies: dict[str, Policy] = {}

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        streams = sorted({e.stream_id for e in events})
        loaded = await conn.fetch(
            f"SELECT f.stream_id, f.state, c.first_acknowledged_at, c.first_resolved_at, c.escalation_requests, "
            f"c.paused_customer_seconds, c.paused_third_party_seconds FROM {self.t['case_list_folds']} f "
            f"JOIN {self.t['case_list']} c USING (stream_id) WHERE f.stream_id = ANY($1::text[])",
            streams,
        )
        states: dict[str, EscalationState | None] = {}
        facts: dict[str, dict[str, Any]] = {}
        folds = [json.loads(row["state"]) for row in loaded]
        await self._know_policies(conn, {f["policy_hash"] for f in folds if "policy" not in f}, events[0].position)
        for row, fold in zip(loaded, folds, strict=True):
            if "policy" not in fold:
                fold["policy"] = self._policies[fold["policy_hash"]]
            state = EscalationState.model_validate(fold)
            states[row["stream_id"]] = state
            facts[row["stream_id"]] = {c: row[c] for c in _FACT_COLUMNS if c != "pause_reason"} | {
                "pause_reason": state.paused.reason if state.paused else None
            }
        breaches = []
        last_event_at: dict[str, datetime] = {}
        for event in events:
            stream = event.stream_id
            state = evolve(states.get(stream), event)
            states[stream] = state
            fact = facts.setdefault(stream, _initial_facts())
            _update_facts(fact, state, event)
            last_event_at[stream] = event.recorded_at
            if isinstance(event.data, DeadlineBreached):
                b = event.data
                breaches.append(
                    (event.event_id, state.case_id, b.kind.value, b.level, b.due_at, b.detected_at, event.recorded_at)
                )
        rows = [_row(states[s], facts[s], last_event_at[s]) for s in last_event_at]  # type: ignore[arg-type]
        columns = list(rows[0])
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "case_id")
        await conn.executemany(
            f"INSERT INTO {self.t['case_list']} ({', '.join(columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT (case_id) DO UPDATE SET {updates}",
            [tuple(r.values()) for r in rows],
        )
        await write_folds(
            conn,
            [states[stream] for stream in last_event_at],  # type: ignore[misc]
            folds_table=self.t["case_list_folds"],
            policies_table=self.t["case_list_policies"],
        )
        if breaches:
            await conn.executemany(
                f"INSERT INTO {self.t['case_breaches']} (event_id, case_id, kind, level, due_at, detected_at, recorded_at) "
                f"VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
                breaches,
            )

    async def _know_policies(self, conn: asyncpg.Connection, hashes: set[str], position: int) -> None:
        """Read the policies named by ``hashes`` that this process has not read yet; ``ProjectionCannotContinue``
        (at ``position``, the batch's first event) when one is not kept, or what is kept is not that policy."""
        missing = hashes - self._policies.keys()
        if not missing:
            return
        rows = await conn.fetch(
            f"SELECT content_hash, content FROM {self.t['case_list_policies']} WHERE content_hash = ANY($1::text[])",
            list(missing),
        )
        for row in rows:
            try:
                self._policies[row["content_hash"]] = verified(row["content_hash"], row["content"])
            except ValueError:  # not that policy: left unknown, and refused below
                continue
        if unknown := sorted(missing - self._policies.keys()):
            raise ProjectionCannotContinue(
                position,
                f"{self.t['case_list_policies']} lacks the policies {unknown} that folds name, or holds something "
                "else under their hashes; rebuild the case list (escalations rebuild case_list)",
            )


def fold_json(state: EscalationState) -> str:
    """What ``case_list_folds`` keeps of ``state``: all but its policy, which the fold names by hash, unless the
    policy does not hash to what the case names (a damaged opening): then the fold keeps it, as it is."""
    if state.policy.content_hash() == state.policy_hash:
        return state.model_dump_json(exclude={"policy"})
    return state.model_dump_json()


async def write_folds(
    conn: asyncpg.Connection,
    states: Sequence[EscalationState],
    *,
    folds_table: str = "case_list_folds",
    policies_table: str = "case_list_policies",
) -> None:
    """Keep each of ``states`` as its case's fold, and the policies the folds name by hash (in the caller's
    transaction, so no fold names a policy that is not kept)."""
    named = {s.policy_hash: s.policy for s in states if s.policy.content_hash() == s.policy_hash}
    await conn.executemany(
        f"INSERT INTO {policies_table} (content_hash, content) VALUES ($1, $2) ON CONFLICT (content_hash) DO NOTHING",
        [(content_hash, _policy_text(content_hash, policy)) for content_hash, policy in named.items()],
    )
    await conn.executemany(
        f"INSERT INTO {folds_table} (stream_id, state) VALUES ($1, $2) "
        f"ON CONFLICT (stream_id) DO UPDATE SET state = EXCLUDED.state",
        [(s.stream_id, fold_json(s)) for s in states],
    )


_POLICY_TEXTS: dict[str, str] = {}  # content hash -> canonical JSON: content-addressed, so never stale


def _policy_text(content_hash: str, policy: Policy) -> str:
    """The canonical JSON of ``policy`` (whose hash is ``content_hash``), encoded once per process and hash:
    every batch writes the policies its folds name."""
    text = _POLICY_TEXTS.get(content_hash)
    if text is None:
        if len(_POLICY_TEXTS) >= 64:  # a process sees a handful of policy versions
            _POLICY_TEXTS.clear()
        text = _POLICY_TEXTS[content_hash] = canonical_json(policy.content())
    return text


def _initial_facts() -> dict[str, Any]:
    return {
        "first_acknowledged_at": None,
        "first_resolved_at": None,
        "escalation_requests": 0,
        "paused_customer_seconds": 0.0,
        "paused_third_party_seconds": 0.0,
        "pause_reason": None,
    }


def _update_facts(fact: dict[str, Any], state: EscalationState, event: RecordedEvent) -> None:
    data = event.data
    if fact["first_acknowledged_at"] is None and state.acknowledged_at is not None:
        fact["first_acknowledged_at"] = state.acknowledged_at
    if fact["first_resolved_at"] is None and state.resolved_at is not None:
        fact["first_resolved_at"] = state.resolved_at
    if isinstance(data, EscalationRequested):
        fact["escalation_requests"] += 1
    elif isinstance(data, Paused):
        fact["pause_reason"] = data.reason
    elif isinstance(data, Resumed):
        key = (
            "paused_customer_seconds"
            if fact["pause_reason"] == PauseReason.WAITING_ON_CUSTOMER
            else "paused_third_party_seconds"
        )
        fact[key] += data.paused_seconds
        fact["pause_reason"] = None


def _row(s: EscalationState, fact: dict[str, Any], last_event_at: datetime) -> dict[str, Any]:
    deadline = next_deadline(s)
    return {
        "case_id": s.case_id,
        "stream_id": s.stream_id,
        "version": s.version,
        "status": s.status.value,
        "priority": s.priority.value,
        "severity": s.severity.value,
        "level": s.level,
        "max_level_reached": s.max_level_reached,
        "owner": s.owner,
        "customer_id": s.customer.id,
        "customer_name": s.customer.name,
        "customer_tier": s.customer.tier.value,
        "category": s.category.value,
        "lifecycle_stage": s.lifecycle_stage.value,
        "source": s.source.value,
        "title": s.title,
        "opened_at": s.opened_at,
        "acknowledged_at": s.acknowledged_at,
        "first_acknowledged_at": fact["first_acknowledged_at"],
        "resolved_at": s.resolved_at,
        "first_resolved_at": fact["first_resolved_at"],
        "closed_at": s.closed_at,
        "withdrawn_at": s.withdrawn_at,
        "next_deadline_at": deadline[0] if deadline else None,
        "next_deadline_kind": deadline[1].value if deadline else None,
        "breached": bool(s.breaches),
        "breached_acknowledge": DeadlineKind.ACKNOWLEDGE in s.breaches,
        "breached_update": DeadlineKind.UPDATE in s.breaches,
        "breached_resolve": DeadlineKind.RESOLVE in s.breaches,
        "paused": s.paused is not None,
        "paused_seconds": s.paused_seconds,
        "paused_customer_seconds": fact["paused_customer_seconds"],
        "paused_third_party_seconds": fact["paused_third_party_seconds"],
        "handoffs": s.handoffs,
        "reopen_count": s.reopen_count,
        "escalation_requests": fact["escalation_requests"],
        "declined_requests": s.declined_requests,
        "customer_rejections": s.customer_rejections,
        "compensation_paid": Decimal(s.compensation_paid),
        "satisfaction": s.satisfaction,
        "root_cause": s.root_cause.value if s.root_cause else None,
        "at_risk": _at_risk(s, deadline[1] if deadline else None),
        "follow_up_due_at": follow_up_due(s) if s.status in AWAITING_FOLLOW_UP and s.satisfaction is None else None,
        "policy_label": s.policy_label,
        "policy_hash": s.policy_hash,
        "last_event_at": last_event_at,
        "team": s.team,
        "annual_value": Decimal(s.customer.annual_value),
    }


def _at_risk(s: EscalationState, next_kind: DeadlineKind | None) -> bool:
    """The next deadline's warning point has passed (its warning is recorded) and it is not yet breached."""
    clock = s.clocks.get(next_kind) if next_kind is not None else None
    return bool(clock is not None and clock.warned and not clock.repeat)
