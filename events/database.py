"""Connection pools and databases. Nothing here runs at import time."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from events.migrate import apply_migrations

# What a lost or unreachable database raises: worth retrying once it is back.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
)


log = structlog.get_logger("escalations.database")

# The role the services work as (0005_app_role.sql): SELECT and INSERT only on events.
APP_ROLE = "escalations_app"


# How long a long-running service (worker, projector, API) waits at start for a database that is away.
SERVICE_PATIENCE = 300.0
# Raised by a connection attempt but not worth waiting for: the DSN itself is wrong (a bad sslmode or port,
# a feature the client lacks). Such an error is answered at once, never waited on for five minutes.
MISCONFIGURED: tuple[type[BaseException], ...] = (
    asyncpg.ClientConfigurationError,
    asyncpg.UnsupportedClientFeatureError,
)
# asyncpg's own connect timeout, kept by callers that do not wait for the database.
ASYNCPG_CONNECT_TIMEOUT = 60.0
# Each attempt's connect timeout while waiting (asyncpg's 60 s would overrun the patience).
CONNECT_ATTEMPT_TIMEOUT = 10.0


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, role: str | None = None, patience: float = 0.0
) -> asyncpg.Pool:
    """A pool for ``dsn`` with migrations applied (idempotent; safe from many processes).

    With ``role``, every connection works as that role (``SET ROLE``) once the
    migrations, which need the login's own rights, are done. The long-running
    services pass ``APP_ROLE``; admin tools (rebuild, migrate) do not.

    ``patience``: seconds to keep trying while the database is unreachable (``DATABASE_UNAVAILABLE``), with
    backoff up to 5 s, before the error is raised. A service restarted during a database outage waits it out
    instead of exiting; a command-line tool (0) answers at once; a misconfigured DSN is raised at once.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + patience
    delay = 0.2
    while True:
        remaining = give_up - loop.time()
        try:
            # While waiting, no attempt outlasts the patience; a caller that does not wait keeps asyncpg's 60 s.
            timeout = max(1.0, min(CONNECT_ATTEMPT_TIMEOUT, remaining)) if patience > 0 else ASYNCPG_CONNECT_TIMEOUT
            async with _connection(dsn, timeout=timeout) as conn:
                await apply_migrations(conn)
            break
        except MISCONFIGURED:
            raise
        except DATABASE_UNAVAILABLE as exc:
            left = give_up - loop.time()
            if left <= 0:
                raise
            # The last wait is cut to what is left, so the last attempt comes when the patience runs out
            # (giving up as soon as the next full wait would overrun it gave up early, by up to one backoff).
            wait = min(delay, left)
            log.warning("database unreachable; waiting for it", error=str(exc) or type(exc).__name__, retry_in=wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, 5.0)

    async def work_as_role(conn: asyncpg.Connection) -> None:
        # SET ROLE survives the pool's RESET ALL between uses (role is not reset by it).
        quoted = '"' + str(role).replace('"', '""') + '"'
        await conn.execute(f"SET ROLE {quoted}")

    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=work_as_role if role else None)
    assert pool is not None
    return pool


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


async def create_database(dsn: str, database: str) -> str:
    """Create ``database`` on the server of ``dsn`` if missing; return its DSN."""
    async with _connection(dsn) as conn:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # Identifiers cannot be parameters; quote_ident makes the name safe.
            quoted = await conn.fetchval("SELECT quote_ident($1)", database)
            await conn.execute(f"CREATE DATABASE {quoted}")
    return with_database(dsn, database)


async def drop_database(dsn: str, database: str) -> None:
    async with _connection(dsn) as conn:
        quoted = await conn.fetchval("SELECT quote_ident($1)", database)
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")


class _connection:
    def __init__(self, dsn: str, *, timeout: float = ASYNCPG_CONNECT_TIMEOUT) -> None:
        self._dsn = dsn
        self._timeout = timeout

    async def __aenter__(self) -> asyncpg.Connection:
        self._conn = await asyncpg.connect(self._dsn, timeout=self._timeout)
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        await self._conn.close()
