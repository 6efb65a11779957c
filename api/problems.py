"""Errors as ``application/problem+json`` (RFC 9457): every refusal says which rule refused it."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, *, rule: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.rule, self.extra = status, title, detail, rule, extra

    def response(self, instance: str | None = None) -> JSONResponse:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.rule:
            body["rule"] = self.rule
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM_TYPE, headers=headers)


def not_found(what: str) -> Problem:
    return Problem(404, "Not Found", f"{what} does not exist", rule="case.unknown")


def unavailable(what: str, error: object) -> Problem:
    return Problem(503, "Service Unavailable", f"{what} is unreachable: {error}", rule="dependency.unavailable")
