"""The README's curl session, run exactly as written against a live API."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api_support import ApiStack, api_stack

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(120)


def readme_session() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- readme-curl-session:start -->\s*```sh\n(.*?)```\s*<!-- readme-curl-session:end -->", text, re.S
    )
    assert block, "README lost its curl session markers"
    return block.group(1)


@pytest.fixture
async def stack(dev_env: WorkflowEnvironment, pool: asyncpg.Pool, database_url: str) -> AsyncIterator[ApiStack]:
    async with api_stack(dev_env.client, pool, database_url) as s:
        yield s


async def test_the_readme_curl_session_opens_acknowledges_and_resolves_a_case(
    stack: ApiStack, database_url: str
) -> None:
    script = readme_session().replace("API=http://127.0.0.1:8000", f"API={stack.base_url}")
    assert script.count("API=") == 1, "the session must set API exactly once (the test points it at its server)"
    env = {**os.environ, "DATABASE_URL": database_url, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = await asyncio.to_thread(
        subprocess.run, ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    replies, text, decoder = [], done.stdout.strip(), json.JSONDecoder()
    while text:  # curl prints the JSON replies back to back
        value, end = decoder.raw_decode(text)
        replies.append(value)
        text = text[end:].lstrip()
    assert len(replies) == 5
    final = replies[-1]
    assert final["case_id"] == "readme-1" and final["status"] == "resolved" and final["priority"] == "P4"
