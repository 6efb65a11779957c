"""Sealing personal fields under a key per data subject, opening them on read, and destroying the keys.

Contract (docs/audit-log.md, "Erasure"):
* A case stream is *sealed* when its opening event's pinned policy lists ``[personal_data] sealed`` fields;
  the store registers it (``sealed_streams``) with its subject, the customer id, when it appends the opening.
* Appending to a sealed stream replaces each listed field's text with an envelope
  ``{"sealed": {"data": b64, "key": uuid, "nonce": b64}}``: AES-256-GCM under the subject's live key, with
  the stream, version and field path as associated data (an envelope moved elsewhere does not open). The
  envelope is what is stored and hashed.
* Reading opens every envelope with its key, or shows ``ERASED`` when the key was destroyed. An envelope that
  does not open under a live key was altered: the event is reported as corrupt, never shown.
* ``destroy_keys`` erases a subject: its live keys lose their key material (the row stays as a tombstone).
  Keys are read from the database on every read, never cached, so an erasure holds in every process at once.
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from workflows.core.events import NewEvent, Opened
from workflows.core.personal_data import ERASED, sealed_paths

Keys = Mapping[str, bytes | None]  # key id -> key material (None: erased)


class Sealing:
    """How one append is sealed: ``seal`` for ``records.body_for``, and the key it seals under (so the
    append's own rows open without reading the key back)."""

    def __init__(self, paths: Mapping[str, tuple[str, ...]], key_id: str, key: bytes) -> None:
        self.paths, self.key_id, self.key = paths, key_id, key

    def seal(self, event: NewEvent, content: dict[str, Any]) -> dict[str, Any]:
        return seal_content(
            content, self.paths.get(event.type, ()), self.key_id, self.key, event.stream_id, event.version
        )


# Canonical JSON sorts keys, so an envelope always reads {"sealed":{"data":...,"key":...,"nonce":...}}; a
# user's text cannot contain this unescaped (its quotes are escaped), so the pattern finds envelopes only.
_ENVELOPE_KEY = re.compile(r'\{"sealed":\{"data":"[A-Za-z0-9+/=]*","key":"([0-9a-f-]{36})"')


class SealedFieldError(ValueError):
    """A sealed field that does not open under its live key: the stored bytes were altered."""


def _aad(stream_id: str, version: int, path: str) -> bytes:
    return f"{stream_id}\n{version}\n{path}".encode()


def _walk(data: dict[str, Any], path: str) -> tuple[dict[str, Any], str] | None:
    """The dict holding the last step of ``path`` in ``data`` and that step's name (None: not there)."""
    *parents, last = path.split(".")
    node: Any = data
    for step in parents:
        node = node.get(step) if isinstance(node, dict) else None
    return (node, last) if isinstance(node, dict) and last in node else None


def seal_content(
    content: dict[str, Any], paths: Iterable[str], key_id: str, key: bytes, stream_id: str, version: int
) -> dict[str, Any]:
    """``content`` (an event as stored, before canonical JSON) with the text at each of ``paths`` in its data
    sealed. Paths holding no text (absent, None) are left as they are."""
    cipher = AESGCM(key)
    for path in paths:
        found = _walk(content["data"], path)
        if found is None or not isinstance(found[0][found[1]], str):
            continue
        holder, name = found
        nonce = os.urandom(12)
        sealed = cipher.encrypt(nonce, holder[name].encode(), _aad(stream_id, version, path))
        holder[name] = {
            "sealed": {
                "data": base64.b64encode(sealed).decode(),
                "key": key_id,
                "nonce": base64.b64encode(nonce).decode(),
            }
        }
    return content


def key_ids_in(bodies: Iterable[str]) -> set[str]:
    """The key ids the sealed fields of these stored bodies name."""
    return {match for body in bodies for match in _ENVELOPE_KEY.findall(body)}


def open_content(content: dict[str, Any], keys: Keys) -> dict[str, Any]:
    """``content`` with every sealed field opened (``ERASED`` where its key was destroyed or is unknown).
    ``SealedFieldError`` when one does not open under its live key."""
    data = content.get("data")
    if isinstance(data, dict):
        _open(data, "", keys, str(content.get("stream_id")), content.get("version"))
    return content


def _open(node: dict[str, Any], prefix: str, keys: Keys, stream_id: str, version: Any) -> None:
    for name, value in node.items():
        if not isinstance(value, dict):
            continue
        path = f"{prefix}{name}"
        envelope = value.get("sealed") if set(value) == {"sealed"} else None
        if not isinstance(envelope, dict):
            _open(value, f"{path}.", keys, stream_id, version)
            continue
        key = keys.get(str(envelope.get("key")))
        if key is None:
            node[name] = ERASED
            continue
        try:
            plain = AESGCM(key).decrypt(
                base64.b64decode(envelope["nonce"]), base64.b64decode(envelope["data"]), _aad(stream_id, version, path)
            )
            node[name] = plain.decode()
        except (InvalidTag, KeyError, ValueError, TypeError):
            raise SealedFieldError(f"sealed field {path!r} does not open under its key: it was altered") from None


async def fetch_keys(conn: asyncpg.Connection | asyncpg.Pool, key_ids: Iterable[str]) -> dict[str, bytes | None]:
    """Key material by id (None for an erased key); ids with no row are absent (read as erased)."""
    wanted = sorted(key_ids)
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT key_id::text AS key_id, key FROM personal_data_keys WHERE key_id = ANY($1::uuid[])", wanted
    )
    return {r["key_id"]: (bytes(r["key"]) if r["key"] is not None else None) for r in rows}


async def keys_for_rows(conn: asyncpg.Connection | asyncpg.Pool, bodies: Sequence[str]) -> dict[str, bytes | None]:
    """The keys the sealed fields of ``bodies`` need, in one query (none when nothing is sealed)."""
    return await fetch_keys(conn, key_ids_in(bodies))


class Sealer:
    """Seals the personal fields of appends to sealed streams (one per event store; safe across tasks).

    Which streams are sealed, and how, never changes once registered, so it is remembered; the subject's live
    key is read (or made) at each append that has text to seal, so an erasure between two appends is seen."""

    def __init__(self) -> None:
        self._streams: dict[str, tuple[str, dict[str, tuple[str, ...]]] | None] = {}

    async def sealing_for(self, pool: asyncpg.Pool, stream_id: str, events: Sequence[NewEvent]) -> Sealing | None:
        """How to seal ``events`` of ``stream_id`` before they are stored (None: nothing to seal)."""
        rule = await self._stream_rule(pool, stream_id, events)
        if rule is None:
            return None
        subject, paths = rule
        if not any(paths.get(e.type) for e in events):
            return None
        async with pool.acquire() as conn:
            key_id, key = await live_key(conn, subject)
        return Sealing(paths, key_id, key)

    async def _stream_rule(
        self, pool: asyncpg.Pool, stream_id: str, events: Sequence[NewEvent]
    ) -> tuple[str, dict[str, tuple[str, ...]]] | None:
        if stream_id in self._streams:
            return self._streams[stream_id]
        first = events[0]
        async with pool.acquire() as conn:
            row = None
            if first.version == 1 and isinstance(first.data, Opened) and (paths := sealed_paths(first.data.policy)):
                row = await conn.fetchrow(
                    "INSERT INTO sealed_streams (stream_id, subject, paths) VALUES ($1, $2, $3) "
                    "ON CONFLICT (stream_id) DO NOTHING RETURNING subject, paths",
                    stream_id,
                    first.data.customer.id,
                    json.dumps(paths),
                )
            if row is None:  # registered before (a re-sent opening, or a later append)
                row = await conn.fetchrow("SELECT subject, paths FROM sealed_streams WHERE stream_id = $1", stream_id)
        rule = None
        if row is not None:
            rule = (row["subject"], {t: tuple(p) for t, p in json.loads(row["paths"]).items()})
        if row is not None or first.version > 1:
            self._streams[stream_id] = rule  # an unregistered stream past its opening stays in the clear
        return rule


async def live_key(conn: asyncpg.Connection, subject: str) -> tuple[str, bytes]:
    """The subject's live key, made on first need (and again after an erasure). One round trip when it
    exists, which is every time but the first."""
    query = "SELECT key_id::text AS key_id, key FROM personal_data_keys WHERE subject = $1 AND erased_at IS NULL"
    row = await conn.fetchrow(query, subject)
    if row is None:
        await conn.execute(
            "INSERT INTO personal_data_keys (key_id, subject, key) VALUES ($1, $2, $3) "
            "ON CONFLICT (subject) WHERE erased_at IS NULL DO NOTHING",
            uuid.uuid4(),
            subject,
            AESGCM.generate_key(bit_length=256),
        )
        row = await conn.fetchrow(query, subject)  # ours, or the one a concurrent append made first
    return row["key_id"], bytes(row["key"])


async def destroy_keys(conn: asyncpg.Connection, subject: str) -> list[str]:
    """Erase ``subject``'s live keys (in the caller's transaction); return their ids."""
    rows = await conn.fetch(
        "UPDATE personal_data_keys SET key = NULL, erased_at = now() WHERE subject = $1 AND erased_at IS NULL "
        "RETURNING key_id::text AS key_id",
        subject,
    )
    return [r["key_id"] for r in rows]
