"""The transparency log in PostgreSQL: kept up with the events, proved from stored nodes, signed as checkpoints.

Contract (docs/audit-log.md):
* ``extend`` adds a leaf for every event not yet in the log, in position order, with the complete subtrees
  each leaf completes, in one transaction under the log's advisory lock (one writer at a time, however many
  processes keep the log). A crash rolls the batch back; the next call starts where the stored log ends.
* ``inclusion``/``consistency``/``root`` read O(log n) stored nodes and never recompute the tree.
* ``sign`` signs the current size only if the tree is consistent with the last signed checkpoint (itself
  checked against the key): a log MUST NOT sign two inconsistent checkpoints (C2SP tlog-checkpoint), so a
  rewritten history is refused here as well as caught by an auditor holding an earlier checkpoint.
* ``recompute`` rebuilds the whole tree from the events in memory, one leaf at a time, and compares it
  with every stored leaf, node and checkpoint.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from events import merkle
from events.log_keys import LogSigner
from events.store import EventStore
from scripts.verify_bundle import (
    BUNDLE_FORMAT,
    CONSISTENCY_FORMAT,
    Checkpoint,
    Unreadable,
    consistency_verifies,
    leaf_hash,
    node_hash,
)
from workflows.core.events import stream_id_for

LOG_LOCK = 7310295881460248677  # the log's transaction-scoped advisory lock ("esc_appd" + 1)
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162: the root of the empty tree


class LogError(Exception):
    """A refusal or a fault of the log; the message names its rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f'log rule "{rule}": {message}')
        self.rule = rule


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str


@dataclass
class Recomputation:
    """What ``recompute`` found: how many leaves the events make, how many the log stores, and differences."""

    events: int = 0
    stored_leaves: int = 0
    checkpoints: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.differences


async def log_size(conn: asyncpg.Connection) -> tuple[int, int]:
    """(leaves in the log, position of the last one; 0 when empty)."""
    head = await conn.fetchrow("SELECT leaf_index, position FROM log_leaves ORDER BY leaf_index DESC LIMIT 1")
    return (0, 0) if head is None else (head["leaf_index"] + 1, head["position"])


async def _nodes(conn: asyncpg.Connection, wanted: set[merkle.Node]) -> dict[merkle.Node, bytes]:
    leaves = [index for level, index in wanted if level == 0]
    inner = [(level, index) for level, index in wanted if level > 0]
    rows = await conn.fetch(
        "SELECT 0 AS level, leaf_index AS node_index, hash FROM log_leaves WHERE leaf_index = ANY($1::bigint[]) "
        "UNION ALL "
        "SELECT n.level, n.node_index, n.hash FROM log_nodes n "
        "JOIN unnest($2::smallint[], $3::bigint[]) AS w(level, node_index) USING (level, node_index)",
        leaves,
        [level for level, _ in inner],
        [index for _, index in inner],
    )
    found = {(r["level"], r["node_index"]): bytes(r["hash"]) for r in rows}
    if missing := wanted - found.keys():
        raise LogError("missing_node", f"stored nodes {sorted(missing)[:3]} are missing: run escalations log recompute")
    return found


async def _hashes(conn: asyncpg.Connection, ranges: Sequence[merkle.Range]) -> list[bytes]:
    stored = await _nodes(conn, merkle.nodes_for(ranges))
    return merkle.hashes_for(ranges, stored.__getitem__)


async def root(conn: asyncpg.Connection, size: int) -> bytes:
    """The root of the tree of the first ``size`` leaves."""
    if size == 0:
        return EMPTY_ROOT
    return (await _hashes(conn, [(0, size)]))[0]


async def extend(conn: asyncpg.Connection, limit: int = 5000) -> int:
    """Add up to ``limit`` leaves for the events after the log's last one; return how many were added.
    Runs in its own transaction (or the caller's)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOG_LOCK)
        size, after = await log_size(conn)
        rows = await conn.fetch(
            "SELECT position, hash FROM events WHERE position > $1 ORDER BY position LIMIT $2", after, limit
        )
        if rows:
            await add_leaves(conn, size, [(r["position"], r["hash"]) for r in rows])
        return len(rows)


async def add_leaves(conn: asyncpg.Connection, size: int, entries: Sequence[tuple[int, str]]) -> None:
    """Append leaves for ``entries`` (position, event hash in hex), in order, to a log of ``size`` leaves, with
    every subtree they complete. The caller holds the log's lock in a transaction (``extend`` does; a benchmark
    building a large log from synthetic hashes calls this directly)."""
    frontier = merkle.blocks(0, size)
    stored = await _nodes(conn, set(frontier)) if frontier else {}
    stack = [(level, stored[(level, index)]) for level, index in frontier]
    leaf_rows: list[tuple[int, int, bytes]] = []
    node_rows: list[tuple[int, int, bytes]] = []
    for offset, (position, event_hash) in enumerate(entries):
        index = size + offset
        digest = leaf_hash(bytes.fromhex(event_hash))
        leaf_rows.append((index, position, digest))
        node_rows += _push(stack, index, digest)
    await _insert(conn, "log_leaves (leaf_index, position, hash)", "bigint", leaf_rows)
    if node_rows:
        await _insert(conn, "log_nodes (level, node_index, hash)", "smallint", node_rows)


def _push(stack: list[tuple[int, bytes]], index: int, digest: bytes) -> list[tuple[int, int, bytes]]:
    """Push leaf ``index`` (hash ``digest``) onto the right edge of the tree (``stack``: its complete subtrees,
    largest first, as (level, hash)); return the subtrees it completes, as (level, node index, hash)."""
    made: list[tuple[int, int, bytes]] = []
    stack.append((0, digest))
    while len(stack) >= 2 and stack[-2][0] == stack[-1][0]:
        (level, right), (_, left) = stack.pop(), stack.pop()
        combined = node_hash(left, right)
        made.append((level + 1, index >> (level + 1), combined))
        stack.append((level + 1, combined))
    return made


async def _insert(conn: asyncpg.Connection, target: str, first_type: str, rows: list[tuple[int, int, bytes]]) -> None:
    await conn.execute(
        f"INSERT INTO {target} SELECT * FROM unnest($1::{first_type}[], $2::bigint[], $3::bytea[])",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
    )


async def catch_up(conn: asyncpg.Connection, limit: int = 5000) -> int:
    """Extend the log until it holds every stored event; return leaves added."""
    total = 0
    while added := await extend(conn, limit):
        total += added
    return total


async def inclusion(conn: asyncpg.Connection, leaf_index: int, size: int) -> list[bytes]:
    """The inclusion proof of leaf ``leaf_index`` in the tree of ``size`` leaves."""
    return await _hashes(conn, merkle.inclusion_ranges(leaf_index, size))


async def consistency(conn: asyncpg.Connection, first: int, second: int) -> list[bytes]:
    """The consistency proof from the tree of ``first`` leaves to the tree of ``second``."""
    return await _hashes(conn, merkle.consistency_ranges(first, second))


async def leaf_indices(conn: asyncpg.Connection, positions: Sequence[int]) -> dict[int, int]:
    """position -> leaf index, for the positions the log holds."""
    rows = await conn.fetch(
        "SELECT position, leaf_index FROM log_leaves WHERE position = ANY($1::bigint[])", list(positions)
    )
    return {r["position"]: r["leaf_index"] for r in rows}


async def latest_checkpoint(conn: asyncpg.Connection) -> StoredCheckpoint | None:
    row = await conn.fetchrow("SELECT size, root, note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
    return None if row is None else StoredCheckpoint(row["size"], bytes(row["root"]), row["note"])


async def checkpoint_at(conn: asyncpg.Connection, size: int) -> StoredCheckpoint | None:
    row = await conn.fetchrow("SELECT size, root, note FROM log_checkpoints WHERE size = $1", size)
    return None if row is None else StoredCheckpoint(row["size"], bytes(row["root"]), row["note"])


async def sign(conn: asyncpg.Connection, signer: LogSigner) -> StoredCheckpoint | None:
    """Sign a checkpoint of the log as it stands, unless the last one already covers it (None then).

    ``LogError`` (``log.inconsistent``) when the stored tree does not extend the last signed checkpoint,
    or (``log.checkpoint_forged``) when that checkpoint's signature is not this key's: nothing is signed."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOG_LOCK)
        size, _ = await log_size(conn)
        last = await latest_checkpoint(conn)
        if last is not None and last.size >= size:
            return None
        tree_root = await root(conn, size)
        if last is not None:
            _check_extends(last, signer, size, tree_root, await consistency(conn, last.size, size))
        note = signer.sign_checkpoint(size, tree_root)
        await conn.execute("INSERT INTO log_checkpoints (size, root, note) VALUES ($1, $2, $3)", size, tree_root, note)
        return StoredCheckpoint(size, tree_root, note)


def _check_extends(last: StoredCheckpoint, signer: LogSigner, size: int, tree_root: bytes, proof: list[bytes]) -> None:
    try:
        saved = Checkpoint.parse(last.note)
    except Unreadable as exc:
        raise LogError("checkpoint_forged", f"the checkpoint at size {last.size} does not parse: {exc}") from None
    key = signer.verifier()
    if saved.origin == key.name and (problem := saved.problem_with_signature(key)):
        raise LogError("checkpoint_forged", f"the checkpoint at size {last.size}: {problem}")
    if saved.size != last.size or not consistency_verifies(saved.size, size, saved.root, tree_root, proof):
        raise LogError(
            "inconsistent",
            f"the log at size {size} does not extend the checkpoint signed at size {last.size}: "
            "events it covered were removed or rewritten; nothing more is signed (see docs/audit-log.md)",
        )


async def consistency_document(conn: asyncpg.Connection, first: int, second: int | None = None) -> dict[str, Any]:
    """The proof that the checkpoint at ``second`` (the latest when None) extends the tree of ``first``
    leaves, with that checkpoint: what ``verify_bundle.py verify-consistency`` reads."""
    later = await (latest_checkpoint(conn) if second is None else checkpoint_at(conn, second))
    if later is None:
        raise LogError(
            "no_checkpoint", "no signed checkpoint of that size" if second else "no checkpoint is signed yet"
        )
    if not 0 <= first <= later.size:
        raise LogError("bad_size", f"first must be between 0 and the later checkpoint's size {later.size}")
    proof = await consistency(conn, first, later.size)
    return {
        "format": CONSISTENCY_FORMAT,
        "first": first,
        "second": later.size,
        "proof": [p.hex() for p in proof],
        "checkpoint": later.note,
    }


async def case_bundle(
    conn: asyncpg.Connection, case_id: str, stream_id: str, rows: Sequence[Any], vkey: str, since: int | None = None
) -> dict[str, Any]:
    """One case's events as stored (``rows``: ``events.records.StoredRow``), each with its inclusion proof
    against the latest checkpoint, that checkpoint and the public key; with ``since``, also the consistency
    proof from that size. Only hashes of other events travel in the proofs."""
    checkpoint = await latest_checkpoint(conn)
    indices = await leaf_indices(conn, [r.position for r in rows])
    if checkpoint is None or len(indices) < len(rows) or max(indices.values()) >= checkpoint.size:
        raise LogError(
            "not_yet_checkpointed",
            f"the latest events of {case_id} are not yet covered by a signed checkpoint; "
            "one is signed every minute (or run escalations log sign)",
        )
    ranges = {r.position: merkle.inclusion_ranges(indices[r.position], checkpoint.size) for r in rows}
    stored = await _nodes(conn, merkle.nodes_for([rg for path in ranges.values() for rg in path]))
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "case_id": case_id,
        "stream_id": stream_id,
        "checkpoint": checkpoint.note,
        "public_key": vkey,
        "events": [
            {
                "position": r.position,
                "leaf_index": indices[r.position],
                "version": r.version,
                "prev_hash": r.prev_hash,
                "hash": r.hash,
                "body": r.body,
                "inclusion_proof": [h.hex() for h in merkle.hashes_for(ranges[r.position], stored.__getitem__)],
            }
            for r in rows
        ],
    }
    if since is not None:
        if not 0 <= since <= checkpoint.size:
            raise LogError("bad_size", f"since must be between 0 and the checkpoint's size {checkpoint.size}")
        bundle["consistency"] = {
            "first": since,
            "proof": [p.hex() for p in await consistency(conn, since, checkpoint.size)],
        }
    return bundle


async def recompute(conn: asyncpg.Connection, batch: int = 10_000) -> Recomputation:
    """Rebuild the tree from the events, in memory and one leaf at a time, and compare it with the stored
    leaves, nodes and checkpoint roots. Reads only; reports every kind of difference it meets (the first of
    each, so a rewritten history does not print a million lines)."""
    report = Recomputation()
    report.stored_leaves, _ = await log_size(conn)
    checkpoints = {r["size"]: bytes(r["root"]) for r in await conn.fetch("SELECT size, root FROM log_checkpoints")}
    report.checkpoints = len(checkpoints)
    kinds: set[str] = set()

    def differ(kind: str, text: str) -> None:
        if kind not in kinds:
            kinds.add(kind)
            report.differences.append(text)

    stack: list[tuple[int, bytes]] = []
    after, index = 0, 0
    if 0 in checkpoints and checkpoints[0] != EMPTY_ROOT:
        differ("checkpoint", "the checkpoint at size 0 does not hold the empty tree's root")
    while True:
        rows = await conn.fetch(
            "SELECT position, hash FROM events WHERE position > $1 ORDER BY position LIMIT $2", after, batch
        )
        if not rows:
            break
        first = index
        stored_leaves = {
            r["leaf_index"]: (r["position"], bytes(r["hash"]))
            for r in await conn.fetch(
                "SELECT leaf_index, position, hash FROM log_leaves WHERE leaf_index >= $1 AND leaf_index < $2",
                first,
                first + len(rows),
            )
        }
        made: list[tuple[int, int, bytes]] = []
        for row in rows:
            digest = leaf_hash(bytes.fromhex(row["hash"]))
            held = stored_leaves.get(index)
            if held is not None and held != (row["position"], digest):
                differ("leaf", f"leaf {index} (position {row['position']}) differs from the event stored there")
            made += _push(stack, index, digest)
            index += 1
            if index in checkpoints and merkle.fold([h for _, h in stack]) != checkpoints[index]:
                differ("checkpoint", f"the checkpoint at size {index} does not hold the root of the events' tree")
        if made:
            held_nodes = await conn.fetch(
                "SELECT n.level, n.node_index, n.hash FROM log_nodes n "
                "JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, node_index) USING (level, node_index)",
                [m[0] for m in made],
                [m[1] for m in made],
            )
            held_map = {(r["level"], r["node_index"]): bytes(r["hash"]) for r in held_nodes}
            for level, node_index, digest in made:
                if (level, node_index) in held_map and held_map[(level, node_index)] != digest:
                    differ("node", f"node ({level}, {node_index}) differs from the events' tree")
        after = rows[-1]["position"]
    report.events = index
    if report.stored_leaves > index:
        differ("extra", f"the log holds {report.stored_leaves} leaves, the events make {index}: events were removed")
    if beyond := [size for size in checkpoints if size > index]:
        differ("extra", f"checkpoints up to size {max(beyond)} cover more events than are stored ({index})")
    return report


async def export_case(
    pool: asyncpg.Pool, case_id: str, vkey: str, *, signer: LogSigner | None = None, since: int | None = None
) -> dict[str, Any] | None:
    """The bundle of ``case_id`` (None when no such case is stored). When the case's latest events are not
    yet covered by a signed checkpoint and ``signer`` is given, the log is extended and signed first."""
    stream_id = stream_id_for(case_id)
    rows = await EventStore(pool).read_stored(stream_id)
    if not rows:
        return None
    async with pool.acquire() as conn:
        try:
            return await case_bundle(conn, case_id, stream_id, rows, vkey, since)
        except LogError as exc:
            if exc.rule != "not_yet_checkpointed" or signer is None:
                raise
        await catch_up(conn)
        await sign(conn, signer)
        return await case_bundle(conn, case_id, stream_id, rows, vkey, since)


class CheckpointSchedule:
    """When to sign: every ``every_events`` new leaves, and at least every ``every_seconds`` while the log grows."""

    def __init__(self, every_events: int = 1000, every_seconds: float = 60.0) -> None:
        if every_events < 1 or every_seconds <= 0:
            raise ValueError('rule "log.schedule": sign every 1 or more events and a positive number of seconds')
        self.every_events = every_events
        self.every_seconds = every_seconds
        self._last_signed_at = 0.0

    def due(self, size: int, signed_size: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if size <= signed_size:
            return False
        return size - signed_size >= self.every_events or now - self._last_signed_at >= self.every_seconds

    def signed(self, now: float | None = None) -> None:
        self._last_signed_at = time.monotonic() if now is None else now
