"""What auditors use: point-in-time state, exports, chain verification, digests.

These read the event store itself (the record), not a read model, so nothing
here can be fooled by a stale or corrupted projection.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from events.store import ZERO_HASH, ChainBreak, EventStore, StoredRow, link_problem
from projections.audit_trail import describe
from workflows.core.canonical import canonical_json, sha256_hex
from workflows.core.events import RecordedEvent, stream_id_for
from workflows.core.evolve import fold
from workflows.core.state import EscalationState


async def state_as_of(store: EventStore, case_id: str, at: datetime) -> EscalationState | None:
    """The case as it stood at ``at``: its events up to that instant, folded with its pinned policy."""
    events = await store.read_stream(stream_id_for(case_id))
    return fold(e for e in events if e.occurred_at <= at)


def export_jsonl(rows: Sequence[StoredRow]) -> str:
    """One JSON object a line per event: its exact stored bytes (``body``, as a JSON string) beside the
    stream, version, position and hashes, so the chain can be recomputed from the file alone
    (``scripts/verify_export.py``, standard library only): ``hash = sha256(prev_hash || body)``."""
    return "".join(
        json.dumps(
            {
                "stream_id": r.stream_id,
                "version": r.version,
                "position": r.position,
                "prev_hash": r.prev_hash,
                "hash": r.hash,
                "body": r.body,
            },
            separators=(",", ":"),
        )
        + "\n"
        for r in rows
    )


CSV_COLUMNS = [
    "version",
    "position",
    "occurred_at",
    "recorded_at",
    "actor_id",
    "actor_role",
    "type",
    "action",
    "details",
    "event_id",
    "hash",
]


def export_csv(events: list[RecordedEvent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in events:
        action, details = describe(e)
        writer.writerow(
            [
                e.version,
                e.position,
                e.occurred_at.isoformat(),
                e.recorded_at.isoformat(),
                e.actor.id,
                e.actor.role.value,
                e.type,
                action,
                details,
                str(e.event_id),
                e.hash,
            ]
        )
    return out.getvalue()


def timeline_text(events: list[RecordedEvent]) -> str:
    lines = []
    for e in events:
        action, details = describe(e)
        who = f"{e.actor.id} ({e.actor.role.value})"
        lines.append(
            f"v{e.version:<4} {e.occurred_at:%Y-%m-%d %H:%M:%S}  {who:<28} {action}"
            + (f" — {details}" if details else "")
        )
    return "\n".join(lines) + ("\n" if lines else "")


async def verify_all(pool: asyncpg.Pool) -> tuple[int, int, list[ChainBreak]]:
    """Recompute every chain from the stored bytes: (streams, events, first break of each broken stream)."""
    breaks: list[ChainBreak] = []
    streams = events = 0
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        current: str | None = None
        expected_prev = ZERO_HASH
        expected_version = 1
        broken = False
        async for row in conn.cursor(
            "SELECT stream_id, position, version, body, prev_hash, hash FROM events ORDER BY stream_id, version"
        ):
            events += 1
            if row["stream_id"] != current:
                current, expected_prev, expected_version, broken = row["stream_id"], ZERO_HASH, 1, False
                streams += 1
            if broken:
                continue
            reason = link_problem(
                row["version"], row["body"], row["prev_hash"], row["hash"], expected_version, expected_prev
            )
            if reason:
                breaks.append(ChainBreak(row["stream_id"], row["version"], row["position"], reason))
                broken = True
            expected_prev, expected_version = row["hash"], expected_version + 1
    return streams, events, breaks


async def make_digest(pool: asyncpg.Pool) -> dict[str, Any]:
    """The head (version, hash) of every stream and one sha256 over them all.

    Saved somewhere the database's owner cannot write, it later proves that no
    event at or before those heads changed: any changed byte changes the chain.
    """
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT DISTINCT ON (stream_id) stream_id, version, hash FROM events ORDER BY stream_id, version DESC"
        )
    heads = {r["stream_id"]: {"version": r["version"], "hash": r["hash"]} for r in rows}
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "streams": heads,
        "digest": sha256_hex(canonical_json(heads)),
    }


async def check_digest(pool: asyncpg.Pool, saved: dict[str, Any]) -> list[str]:
    """Problems found comparing the store with a saved digest (empty: nothing before it changed)."""
    heads = saved.get("streams", {})
    problems = []
    if sha256_hex(canonical_json(heads)) != saved.get("digest"):
        problems.append("the digest file itself was altered: its digest does not match its stream heads")
    _, _, breaks = await verify_all(pool)
    broken = {b.stream_id: b for b in breaks}
    async with pool.acquire() as conn:
        for stream_id, head in sorted(heads.items()):
            if stream_id in broken and broken[stream_id].version <= head["version"]:
                b = broken[stream_id]
                problems.append(f"{stream_id} version {b.version}: {b.reason}")
                continue
            stored = await conn.fetchval(
                "SELECT hash FROM events WHERE stream_id = $1 AND version = $2", stream_id, head["version"]
            )
            if stored is None:
                problems.append(f"{stream_id} version {head['version']}: missing from the store")
            elif stored != head["hash"]:
                problems.append(f"{stream_id} version {head['version']}: head hash differs from the saved digest")
    return problems
