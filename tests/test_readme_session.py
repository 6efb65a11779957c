"""The README's curl and shell sessions, run as written against a live API and worker."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api_support import ApiStack

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(120)


def readme_session(name: str = "curl") -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(
        rf"<!-- readme-{name}-session:start -->\s*```sh\n(.*?)```\s*<!-- readme-{name}-session:end -->", text, re.S
    )
    assert block, f"README lost its {name} session markers"
    return block.group(1)


async def test_the_readme_curl_session_opens_acknowledges_and_resolves_a_case(
    served_stack: ApiStack, database_url: str
) -> None:
    script = readme_session().replace("API=http://127.0.0.1:8000", f"API={served_stack.base_url}")
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


async def test_the_readme_shell_session_resolves_a_p1_case_as_written(
    served_stack: ApiStack, dev_env: WorkflowEnvironment, database_url: str
) -> None:
    case_id = f"c-{uuid.uuid4().hex[:8]}"
    script = readme_session("shell").replace(" c-1", f" {case_id}")
    address = dev_env.client.service_client.config.target_host
    assert "export TEMPORAL_ADDRESS=127.0.0.1:7233" in script
    script = script.replace("export TEMPORAL_ADDRESS=127.0.0.1:7233", f"export TEMPORAL_ADDRESS={address}")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ESCALATIONS_TASK_QUEUE": served_stack.task_queue,
        "ESCALATIONS_LOG_LEVEL": "WARNING",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = await asyncio.to_thread(
        subprocess.run, ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stdout + done.stderr
    decoder, text, printed = json.JSONDecoder(), done.stdout.strip(), []
    while text:  # each command prints one JSON object
        value, end = decoder.raw_decode(text)
        printed.append(value)
        text = text[end:].lstrip()
    assert len(printed) == 9
    shown = printed[-1]
    assert shown["case_id"] == case_id and shown["status"] == "resolved" and shown["priority"] == "P1"
