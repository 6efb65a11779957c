"""The operator console: static HTML, CSS and JavaScript served by the API process at ``/console``.

The page is a client of the public ``/v1`` API and nothing else: it signs in with
an API token, and every rule (who may see or do what) is the API's. Nothing is
fetched from the internet; the assets ship in this package.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parent / "console_assets"
CONSOLE_PATH = "/console"


def install_console(app: FastAPI) -> None:
    # The page holds no data; it may be cached briefly, the API's answers are not.
    @app.get(CONSOLE_PATH, include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(ASSETS / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(CONSOLE_PATH)

    app.mount(f"{CONSOLE_PATH}/assets", StaticFiles(directory=ASSETS), name="console-assets")
