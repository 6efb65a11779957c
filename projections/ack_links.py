"""One-click acknowledgement links: signed, short-lived, single-use, bound to a case and a person.

A link is ``<base_url>/v1/ack/<token>``; the token is ``base64url(claims) . base64url(HMAC-SHA256)`` over the
claims (case, person, expiry, a nonce) with a secret from the environment (``ESCALATIONS_LINK_SECRET``),
never the database. ``verify`` refuses a forged token (``ack_link.forged``, 401) and an expired one
(``ack_link.expired``, 410); single use is the caller's: the nonce is recorded when the link is used
(``ack_link.used``, 410).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DEFAULT_TTL = timedelta(hours=24)


class LinkRefused(Exception):
    def __init__(self, status: int, rule: str, message: str) -> None:
        super().__init__(message)
        self.status, self.rule, self.message = status, rule, message


@dataclass(frozen=True)
class AckClaims:
    case_id: str
    person: str
    expires_at: datetime
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AckLinks:
    def __init__(self, secret: str, base_url: str, ttl: timedelta = DEFAULT_TTL) -> None:
        if len(secret) < 16:
            raise ValueError("ESCALATIONS_LINK_SECRET must hold at least 16 characters")
        self._key = secret.encode()
        self._base_url = base_url.rstrip("/")
        self._ttl = ttl

    @classmethod
    def from_env(cls, base_url: str) -> AckLinks | None:
        """Links signed with ``ESCALATIONS_LINK_SECRET`` (None: messages carry no link)."""
        secret = os.environ.get("ESCALATIONS_LINK_SECRET")
        hours = float(os.environ.get("ESCALATIONS_LINK_TTL_HOURS", DEFAULT_TTL.total_seconds() / 3600))
        return cls(secret, base_url, timedelta(hours=hours)) if secret else None

    def token(self, case_id: str, person: str, nonce: str, now: datetime | None = None) -> str:
        expires = (now or datetime.now(UTC)) + self._ttl
        claims = json.dumps(
            {"c": case_id, "p": person, "e": int(expires.timestamp()), "n": nonce}, separators=(",", ":")
        )
        body = _b64(claims.encode())
        return f"{body}.{_b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())}"

    def url_for(self, case_id: str, person: str, nonce: str) -> str:
        return f"{self._base_url}/v1/ack/{self.token(case_id, person, nonce)}"

    def verify(self, token: str, now: datetime | None = None) -> AckClaims:
        body, _, signature = token.partition(".")
        try:
            expected = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
            if not signature or not hmac.compare_digest(expected, _unb64(signature)):
                raise LinkRefused(401, "ack_link.forged", "this link was not issued by this service")
            claims = json.loads(_unb64(body))
            found = AckClaims(
                case_id=str(claims["c"]),
                person=str(claims["p"]),
                expires_at=datetime.fromtimestamp(int(claims["e"]), UTC),
                nonce=str(claims["n"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LinkRefused(401, "ack_link.forged", "this link is malformed") from exc
        if (now or datetime.now(UTC)) >= found.expires_at:
            raise LinkRefused(410, "ack_link.expired", f"this link expired at {found.expires_at.isoformat()}")
        return found
