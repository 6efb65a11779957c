"""Erasing a data subject: destroy their keys, record the erasure, and redact every read model that copied
their sealed texts, in one transaction.

After it commits, no read path shows the texts: the event store opens their envelopes as ``[erased]``, the
audit trail is re-described from the erased events, notification messages lose the erased event data, and
the API's cached replies for the subject's cases are dropped. The stored events, their hashes, the
transparency log and every checkpoint and bundle are untouched and still verify.

Each redacted read model's checkpoint row is locked first, so a projector batch that read the events before
the erasure cannot write their texts back after it (it waits, then reads them erased).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from events.personal_data import destroy_keys
from events.store import parse_rows
from projections.audit_trail import AuditTrailProjection
from projections.case_list import write_folds
from workflows.core.events import Actor, case_id_of
from workflows.core.evolve import fold

MAX_REASON = 300


class ErasureRefused(Exception):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"rule {rule!r}: {message}")
        self.rule = rule


@dataclass(frozen=True)
class Erasure:
    erasure_id: str
    subject: str
    keys: list[str]
    case_ids: list[str]
    erased_at: datetime
    actor: str
    reason: str


async def erase_subject(pool: asyncpg.Pool, subject: str, actor: Actor, reason: str) -> Erasure:
    """Erase everything sealed under ``subject`` (a customer id). ``ErasureRefused`` (``erase.no_reason``,
    ``erase.nothing_to_erase``) writes nothing."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON or any(ord(c) < 32 for c in reason):
        raise ErasureRefused("erase.no_reason", f"give the reason for the erasure (1 to {MAX_REASON} characters)")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT position FROM projection_checkpoints WHERE name = ANY($1) FOR UPDATE",
            ["audit_trail", "notifications", "case_list"],
        )
        keys = await destroy_keys(conn, subject)
        if not keys:
            raise ErasureRefused(
                "erase.nothing_to_erase",
                f"customer {subject!r} has nothing sealed under a live key (never seen, or already erased)",
            )
        streams = [
            r["stream_id"]
            for r in await conn.fetch(
                "SELECT stream_id FROM sealed_streams WHERE subject = $1 ORDER BY stream_id", subject
            )
        ]
        case_ids = [case_id_of(s) for s in streams]
        row = await conn.fetchrow(
            "INSERT INTO personal_data_erasures (erasure_id, subject, actor_id, actor_role, reason, keys, case_ids) "
            "VALUES ($1, $2, $3, $4, $5, $6::uuid[], $7) RETURNING erasure_id::text, erased_at",
            uuid.uuid4(),
            subject,
            actor.id,
            actor.role.value,
            reason,
            keys,
            case_ids,
        )
        await redact_read_models(conn, streams)
    return Erasure(row["erasure_id"], subject, keys, case_ids, row["erased_at"], actor.id, reason)


async def redact_read_models(conn: asyncpg.Connection, streams: list[str]) -> None:
    """Rewrite what the read models copied from ``streams``' events, from the events as they read now."""
    if not streams:
        return
    rows = await conn.fetch(
        "SELECT position, stream_id, version, event_id, body, prev_hash, hash FROM events "
        "WHERE stream_id = ANY($1) ORDER BY position",
        streams,
    )
    events = await parse_rows(conn, rows)
    case_ids = [case_id_of(s) for s in streams]
    checkpoints = dict(await conn.fetch("SELECT name, position FROM projection_checkpoints"))
    projected = checkpoints.get("audit_trail", 0)
    await conn.execute("DELETE FROM audit_trail WHERE case_id = ANY($1)", case_ids)
    await AuditTrailProjection().apply(conn, [e for e in events if e.position <= projected])
    # The case list keeps each case's fold to continue it: refold it, as far as it had got, from erased reads.
    folded_to = checkpoints.get("case_list", 0)
    refolded = [fold([e for e in events if e.stream_id == stream and e.position <= folded_to]) for stream in streams]
    await write_folds(conn, [state for state in refolded if state is not None])
    await conn.executemany(
        "UPDATE deliveries SET message = jsonb_set(message, '{event,data}', $2::jsonb) "
        "WHERE event_id = $1 AND message ? 'event'",
        [(e.event_id, e.data.model_dump_json()) for e in events],
    )
    await conn.execute(
        "DELETE FROM api_idempotency WHERE body LIKE ANY($1)",
        [f'%"case_id":"{case_id}"%' for case_id in case_ids] + [f'%"case_id": "{case_id}"%' for case_id in case_ids],
    )


async def erasures(conn: asyncpg.Connection | asyncpg.Pool, subject: str | None = None) -> list[dict[str, object]]:
    """Every erasure (of ``subject``), newest first."""
    rows = await conn.fetch(
        "SELECT erasure_id::text, subject, actor_id, actor_role, reason, keys::text[] AS keys, case_ids, erased_at "
        "FROM personal_data_erasures WHERE $1::text IS NULL OR subject = $1 ORDER BY erased_at DESC",
        subject,
    )
    return [json.loads(json.dumps(dict(r), default=str)) for r in rows]
