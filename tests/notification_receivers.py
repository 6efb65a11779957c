"""Real receivers for the notification tests: an SMTP server (aiosmtpd) and HTTP endpoints (chat, webhooks)
that record what arrives and drop repeats by delivery id, as a careful receiver does."""

from __future__ import annotations

import email
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


class MailSink:
    """An SMTP server on ``port``: keeps each message by its Message-ID (a repeat is counted, not kept).
    ``stop`` and ``start`` again on the same port to simulate an outage; ``delay`` slows every DATA."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: dict[str, email.message.Message] = {}
        self.seen: Counter[str] = Counter()
        self.delay = 0.0
        self._controller: Controller | None = None
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                import asyncio

                if sink.delay:
                    await asyncio.sleep(sink.delay)
                message = email.message_from_bytes(envelope.content)
                key = message["Message-ID"]
                sink.seen[key] += 1
                sink.messages.setdefault(key, message)
                return "250 Message accepted"

        self._handler = Handler()

    def start(self) -> None:
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[email.message.Message]:
        return [m for m in self.messages.values() if m["To"] == address]


class HttpSink:
    """An HTTP server recording POSTs (path, headers, body), keyed by the delivery id header; answers
    ``status`` (settable: 500 makes deliveries fail)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        self.status = 200
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                record = {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                with sink.lock:
                    status = sink.status
                    if status < 300:
                        sink.requests.append(record)
                        key = self.headers.get("X-Escalations-Delivery-Id") or self.headers.get("webhook-id", "")
                        sink.by_id.setdefault(key, record)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def json_bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests if r["path"] == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
