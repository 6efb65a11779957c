"""The directory over HTTP: people, teams, accounts and category directors, their import and their history.

Anyone who may read cases reads the directory; only ``admin`` changes it (``permission.directory``).
Every change is logged with its actor (``GET /v1/directory/changes``), and ``as_of`` shows an entry as it
stood at an instant. A bad entry or file is refused whole, naming the rule (and, for a file, the line).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime

from api.auth import Principal
from api.dependencies import Reader, ServicesDep, role_gate
from api.errors import Problem
from api.routes.responses import json_response
from events.directory_store import DirectoryError
from workflows.core.vocabulary import Role
from workflows.directory_files import DirectoryFileError, import_directory

router = APIRouter(tags=["directory"])
KindPath = Annotated[Literal["people", "teams", "accounts", "directors"], Path()]
EntryPath = Annotated[str, Path(max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")]
MAX_FILE_BYTES = 1_000_000


Admin = Annotated[
    Principal, Depends(role_gate(frozenset({Role.ADMIN}), "permission.directory", "change the directory"))
]


def _refused(exc: DirectoryError) -> Problem:
    if exc.rule == "directory.unknown_entry":
        return Problem(404, "Not Found", exc.message, rule=exc.rule)
    if exc.rule == "directory.unknown_person":
        return Problem(409, "Conflict", exc.message, rule=exc.rule)
    return Problem(422, "Invalid Request", exc.message, rule=exc.rule)


@router.get("/v1/directory/changes")
async def directory_changes(
    reader: Reader,
    services: ServicesDep,
    kind: Annotated[Literal["people", "teams", "accounts", "directors"] | None, Query()] = None,
    entry: Annotated[str | None, Query(alias="id", max_length=128)] = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> Response:
    """Every change to the directory, oldest first: when, who (id and role), which entry, what it became."""
    changes = await services.directory.changes(kind=kind, key=entry, after=after, limit=limit)
    return json_response({"changes": changes})


@router.post("/v1/directory/import")
async def import_file(
    request: Request, admin: Admin, services: ServicesDep, reason: Annotated[str, Query(max_length=300)] = "import"
) -> Response:
    """Create or replace every entry of a directory file (TOML, the request body), checked whole first."""
    raw = await request.body()
    if len(raw) > MAX_FILE_BYTES:
        raise Problem(
            413, "Payload Too Large", f"a directory file may hold {MAX_FILE_BYTES} bytes", rule="request.too_large"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(422, "Invalid Request", "the file is not UTF-8", rule="directory.toml_syntax") from None
    try:
        counts = await import_directory(services.directory, text, actor=admin.actor, reason=reason or "import")
    except DirectoryFileError as exc:
        raise Problem(422, "Invalid Request", str(exc), rule=exc.rule, line=exc.line) from None
    except DirectoryError as exc:
        raise _refused(exc) from None
    return json_response(counts)


@router.get("/v1/directory/{kind}")
async def list_entries(
    kind: KindPath, reader: Reader, services: ServicesDep, as_of: Annotated[AwareDatetime | None, Query()] = None
) -> Response:
    """The entries of one kind now, or as they stood at ``as_of``."""
    return json_response({kind: await services.directory.entries(kind, as_of)})


@router.get("/v1/directory/{kind}/{entry_id}")
async def get_entry(
    kind: KindPath,
    entry_id: EntryPath,
    reader: Reader,
    services: ServicesDep,
    as_of: Annotated[AwareDatetime | None, Query()] = None,
) -> Response:
    found = await services.directory.get(kind, entry_id, as_of)
    if found is None:
        when = f" as of {as_of.isoformat()}" if as_of else ""
        raise Problem(
            404, "Not Found", f"{kind} entry {entry_id!r} does not exist{when}", rule="directory.unknown_entry"
        )
    return json_response(found)


@router.put("/v1/directory/{kind}/{entry_id}")
async def put_entry(
    kind: KindPath,
    entry_id: EntryPath,
    admin: Admin,
    services: ServicesDep,
    doc: Annotated[dict[str, Any], Body()],
    reason: Annotated[str, Query(max_length=300)] = "",
) -> Response:
    """Create or replace one entry (its id must be the one in the path)."""
    try:
        entry = await services.directory.put(kind, entry_id, doc, actor=admin.actor, reason=reason)
    except DirectoryError as exc:
        raise _refused(exc) from None
    return json_response(entry.model_dump(mode="json", exclude_none=True))


@router.delete("/v1/directory/{kind}/{entry_id}", status_code=204)
async def remove_entry(
    kind: KindPath,
    entry_id: EntryPath,
    admin: Admin,
    services: ServicesDep,
    reason: Annotated[str, Query(max_length=300)] = "",
) -> Response:
    """Remove one entry; a person still named by a team, an account or a director is refused."""
    try:
        await services.directory.remove(kind, entry_id, actor=admin.actor, reason=reason)
    except DirectoryError as exc:
        raise _refused(exc) from None
    return Response(status_code=204)
