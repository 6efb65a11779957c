"""Rebuild a read model from event zero into fresh tables, compare, and swap it in.

While the swap happens the projection's checkpoint row is locked, so the live
projector pauses for that projection and resumes on the new tables at the new
checkpoint. The old tables are first brought to the same position, so the
diff shows real differences, not lag.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from events.store import fetch_after, head_position
from projections.runner import Projection

_SUFFIX = "__rebuild"


@dataclass(frozen=True)
class TableDiff:
    table: str
    rows_before: int
    rows_after: int
    only_before: int
    only_after: int

    @property
    def identical(self) -> bool:
        return self.only_before == 0 and self.only_after == 0

    def __str__(self) -> str:
        verdict = (
            "identical" if self.identical else f"{self.only_before} rows only before, {self.only_after} only after"
        )
        return f"{self.table}: {self.rows_before} rows before, {self.rows_after} after; {verdict}"


async def rebuild(
    pool: asyncpg.Pool, projection_type: type[Projection], *, swap: bool = True, batch_size: int = 2000
) -> list[TableDiff]:
    """Project every event into fresh tables; return the diff against the live tables.

    With ``swap`` the fresh tables replace the live ones (refused for projections
    that are not ``rebuildable``); without it they are dropped after the diff.
    """
    if swap and not projection_type.rebuildable:
        raise ValueError(f"projection {projection_type.name!r} records deliveries and is never rebuilt")
    fresh_names = {table: table + _SUFFIX for table in projection_type.tables}
    fresh = projection_type(fresh_names)
    live = projection_type()
    async with pool.acquire() as conn:
        for table, new in fresh_names.items():
            await conn.execute(f"DROP TABLE IF EXISTS {new}")
            await conn.execute(f"CREATE TABLE {new} (LIKE {table} INCLUDING ALL)")
        position = 0
        while True:
            async with conn.transaction():
                events = await fetch_after(conn, position, batch_size)
                if not events:
                    break
                await fresh.apply_relevant(conn, events)
                position = events[-1].position
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING", projection_type.name
            )
            live_position = await conn.fetchval(
                "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", projection_type.name
            )
            head = await head_position(conn)
            await _apply_range(conn, fresh, position, head, batch_size)
            await _apply_range(conn, live, live_position, head, batch_size)
            diffs = [
                await _diff(conn, table, new, projection_type.derived_columns.get(table))
                for table, new in fresh_names.items()
                if table not in projection_type.uncompared_tables
            ]
            if swap:
                for table, new in fresh_names.items():
                    await conn.execute(f"DROP TABLE {table}")
                    await conn.execute(f"ALTER TABLE {new} RENAME TO {table}")
            else:
                for new in fresh_names.values():
                    await conn.execute(f"DROP TABLE {new}")
            await conn.execute(
                "UPDATE projection_checkpoints SET position = $2 WHERE name = $1", projection_type.name, head
            )
    return diffs


async def _apply_range(conn: asyncpg.Connection, projection: Projection, after: int, upto: int, batch: int) -> None:
    while after < upto:
        events = [e for e in await fetch_after(conn, after, batch) if e.position <= upto]
        if not events:
            return
        await projection.apply_relevant(conn, events)
        after = events[-1].position


async def _diff(conn: asyncpg.Connection, before: str, after: str, columns: tuple[str, ...] | None) -> TableDiff:
    cols = ", ".join(columns) if columns else "*"
    return TableDiff(
        table=before,
        rows_before=await conn.fetchval(f"SELECT count(*) FROM {before}"),
        rows_after=await conn.fetchval(f"SELECT count(*) FROM {after}"),
        only_before=await conn.fetchval(
            f"SELECT count(*) FROM (SELECT {cols} FROM {before} EXCEPT ALL SELECT {cols} FROM {after}) d"
        ),
        only_after=await conn.fetchval(
            f"SELECT count(*) FROM (SELECT {cols} FROM {after} EXCEPT ALL SELECT {cols} FROM {before}) d"
        ),
    )
