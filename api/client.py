"""A typed async Python client for the escalations API (httpx).

Every POST carries an ``Idempotency-Key`` (yours, or one generated per call) and
is retried with that same key on connection errors and 502/503/504, so a retry
after a lost reply replays the first reply instead of acting twice.

    async with EscalationsClient("http://127.0.0.1:8000", token) as api:
        reply = await api.open({...})
        await api.command(reply.state.case_id, "acknowledge")
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import BaseModel

from api.models import CommandReply, SignalReply
from workflows.core.case_view import CaseView

RETRYABLE_STATUS = {502, 503, 504}


class ApiError(Exception):
    """The API refused a request; ``rule`` names the rule (``close.not_resolved``, ``permission.sign_off``)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")
        self.status = status
        self.rule: str | None = problem.get("rule")
        self.problem = problem


class EscalationsClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        retries: int = 4,
        backoff: float = 0.2,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, transport=transport, headers={"Authorization": f"Bearer {token}"}
        )
        self._retries = retries
        self._backoff = backoff

    async def __aenter__(self) -> EscalationsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- commands ---------------------------------------------------------------------

    async def open(self, case: dict[str, Any] | BaseModel, *, idempotency_key: str | None = None) -> CommandReply:
        return CommandReply.model_validate(await self._post("/v1/escalations", case, idempotency_key))

    async def command(
        self, case_id: str, route: str, body: dict[str, Any] | None = None, *, idempotency_key: str | None = None
    ) -> CommandReply:
        """Run ``route`` (``acknowledge``, ``notes``, ``sign-off``, ...) on ``case_id``."""
        return CommandReply.model_validate(
            await self._post(f"/v1/escalations/{case_id}/{route}", body or {}, idempotency_key)
        )

    async def signal(
        self, customer_id: str, kind: str, value: float, *, idempotency_key: str | None = None, **extra: Any
    ) -> SignalReply:
        body = {"kind": kind, "value": value, **extra}
        return SignalReply.model_validate(
            await self._post(f"/v1/accounts/{customer_id}/signals", body, idempotency_key)
        )

    # -- queries ----------------------------------------------------------------------

    async def get(self, case_id: str) -> CaseView:
        return CaseView.model_validate(await self._get(f"/v1/escalations/{case_id}"))

    async def cases(self, page_size: int = 100, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every case matching ``filters``, following the cursor."""
        params = {k: v for k, v in filters.items() if v is not None} | {"limit": page_size}
        while True:
            page = await self._get("/v1/escalations", params=params)
            for item in page["items"]:
                yield item
            if not page["next_cursor"]:
                return
            params["cursor"] = page["next_cursor"]

    async def metrics(self) -> dict[str, Any]:
        return await self._get("/v1/metrics")

    # -- transport --------------------------------------------------------------------

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self._send("GET", path, params=params)

    async def _post(self, path: str, body: dict[str, Any] | BaseModel, key: str | None) -> Any:
        payload = body.model_dump(mode="json", exclude_none=True) if isinstance(body, BaseModel) else body
        return await self._send("POST", path, json=payload, headers={"Idempotency-Key": key or uuid.uuid4().hex})

    async def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(self._retries + 1):
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError:
                if attempt == self._retries:
                    raise
            else:
                if response.status_code not in RETRYABLE_STATUS or attempt == self._retries:
                    if response.is_success:
                        return response.json()
                    try:
                        problem = response.json()
                    except ValueError:
                        problem = {"title": response.reason_phrase, "detail": response.text}
                    raise ApiError(response.status_code, problem)
            await asyncio.sleep(self._backoff * 2**attempt)
        raise AssertionError("unreachable")
