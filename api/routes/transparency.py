"""The transparency log over every event: its public key, signed checkpoints, proofs and case bundles.

Every route needs a token whose role may read, as the whole API does (the key and the checkpoints reveal
nothing of any case, and may be republished freely). What each returns is checked offline by
``scripts/verify_bundle.py`` (docs/audit-log.md).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response

from api.dependencies import CasePath, Reader, ServicesDep
from api.errors import Problem, not_found
from api.routes.responses import json_response
from api.services import Services
from events import transparency_log
from events.transparency_log import LogError

router = APIRouter(tags=["audit"])

CHECKPOINT_MEDIA = "text/plain; charset=utf-8"
Size = Annotated[int, Query(ge=0, le=2**62)]
_STATUS = {"no_checkpoint": 404, "bad_size": 422, "not_yet_checkpointed": 409, "missing_node": 409, "inconsistent": 409}


def _problem(exc: LogError) -> Problem:
    status = _STATUS.get(exc.rule, 409)
    return Problem(status, "Transparency log", str(exc), rule=f"log.{exc.rule}")


def _vkey(services: Services) -> str:
    if services.log_signer is None:
        raise Problem(
            404,
            "No log key",
            "no log signing key is configured (ESCALATIONS_LOG_KEY or ESCALATIONS_LOG_KEY_FILE); "
            "`escalations log keygen` makes one",
            rule="log.no_key",
        )
    return services.log_signer.vkey()


@router.get("/v1/audit/key", responses={404: {"description": "no log key is configured"}})
async def log_key(_: Reader, services: ServicesDep) -> dict[str, str]:
    """The log's public key (signed-note verifier format, ``name+keyid+base64``): what an auditor passes to
    ``verify_bundle.py --key``. Fetch it once from a source you trust, and keep it."""
    key = _vkey(services)
    return {"origin": key.split("+")[0], "key": key, "algorithm": "Ed25519"}


@router.get("/v1/audit/checkpoint", responses={200: {"content": {"text/plain": {}}}})
async def latest_checkpoint(_: Reader, services: ServicesDep) -> Response:
    """The latest signed checkpoint (C2SP tlog-checkpoint): origin, tree size, base64 root, signature."""
    async with services.pool.acquire() as conn:
        checkpoint = await transparency_log.latest_checkpoint(conn)
    if checkpoint is None:
        raise Problem(404, "Not Found", "no checkpoint is signed yet", rule="log.no_checkpoint")
    return PlainTextResponse(checkpoint.note, media_type=CHECKPOINT_MEDIA)


@router.get("/v1/audit/checkpoints/{size}", responses={200: {"content": {"text/plain": {}}}})
async def checkpoint_by_size(size: int, _: Reader, services: ServicesDep) -> Response:
    """The checkpoint signed at tree size ``size`` (only sizes that were signed have one)."""
    if not 0 <= size <= 2**62:
        raise Problem(422, "Invalid Request", "size must be between 0 and 2^62", rule="request.invalid")
    async with services.pool.acquire() as conn:
        checkpoint = await transparency_log.checkpoint_at(conn, size)
    if checkpoint is None:
        raise Problem(404, "Not Found", f"no checkpoint was signed at size {size}", rule="log.no_checkpoint")
    return PlainTextResponse(checkpoint.note, media_type=CHECKPOINT_MEDIA)


@router.get("/v1/audit/proofs/inclusion")
async def inclusion_proof(
    _: Reader,
    services: ServicesDep,
    position: Annotated[int | None, Query(ge=1)] = None,
    event_id: UUID | None = None,
    size: Size | None = None,
) -> Response:
    """The inclusion proof of one event (by ``position`` or ``event_id``) in the tree of ``size`` leaves (the
    latest checkpoint's when omitted), with the event's hash and leaf index."""
    if (position is None) == (event_id is None):
        raise Problem(422, "Invalid Request", "give exactly one of position and event_id", rule="request.invalid")
    async with services.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT e.position, e.hash, l.leaf_index FROM events e LEFT JOIN log_leaves l USING (position) "
            + ("WHERE e.position = $1" if position is not None else "WHERE e.event_id = $1"),
            position if position is not None else event_id,
        )
        if row is None:
            raise not_found("event")
        try:
            if size is None:
                latest = await transparency_log.latest_checkpoint(conn)
                if latest is None:
                    raise LogError("no_checkpoint", "no checkpoint is signed yet")
                size = latest.size
            log_size = (await transparency_log.log_size(conn))[0]
            if row["leaf_index"] is None or row["leaf_index"] >= size or size > log_size:
                raise LogError(
                    "bad_size", f"the event is not in the log's first {size} leaves (the log holds {log_size})"
                )
            proof = await transparency_log.inclusion(conn, row["leaf_index"], size)
        except LogError as exc:
            raise _problem(exc) from None
    return json_response(
        {
            "position": row["position"],
            "hash": row["hash"],
            "leaf_index": row["leaf_index"],
            "tree_size": size,
            "proof": [p.hex() for p in proof],
        }
    )


@router.get("/v1/audit/proofs/consistency")
async def consistency_proof(_: Reader, services: ServicesDep, first: Size, second: Size | None = None) -> Response:
    """The proof that the checkpoint at ``second`` (the latest when omitted) extends the tree of ``first``
    leaves, with that checkpoint: save it beside your earlier checkpoint and run
    ``verify_bundle.py verify-consistency``."""
    async with services.pool.acquire() as conn:
        try:
            document = await transparency_log.consistency_document(conn, first, second)
        except LogError as exc:
            raise _problem(exc) from None
    return json_response(document)


@router.get("/v1/escalations/{case_id}/bundle")
async def case_bundle(case_id: CasePath, _: Reader, services: ServicesDep, since: Size | None = None) -> Response:
    """The case's events as their exact stored bytes, each with an inclusion proof against one signed
    checkpoint, the checkpoint and the public key (``since``: also the consistency proof from that size).
    Verify it offline with ``verify_bundle.py verify-bundle``."""
    return json_response(await build_bundle(services, case_id, since))


async def build_bundle(services: Services, case_id: str, since: int | None) -> dict[str, Any]:
    vkey = _vkey(services)
    try:
        bundle = await transparency_log.export_case(
            services.pool, case_id, vkey, signer=services.log_signer, since=since
        )
    except LogError as exc:
        raise _problem(exc) from None
    if bundle is None:
        raise not_found(f"case {case_id!r}")
    return bundle
