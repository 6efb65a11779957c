"""The channels a notification travels by, their configuration, and the one send per channel.

* **email**: SMTP through ``aiosmtplib`` (implicit TLS or STARTTLS, authentication); the delivery id is the
  message's ``Message-ID`` (and ``X-Escalations-Delivery-Id``), so a receiver can drop a repeat.
* **chat**: Slack-compatible incoming webhooks: a readable message (case, what happened, level, link).
* **webhook**: JSON signed as the Standard Webhooks specification says (``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature`` = ``v1,`` base64 HMAC-SHA256 over ``id.timestamp.body``),
  one signature per configured secret, so a secret is rotated with two valid at once.
* **inbox**: a row in PostgreSQL per person, written by the deliverer itself: it always works.

``ChannelsConfig`` is read from a TOML file (``ESCALATIONS_NOTIFY_CONFIG``); secrets come from the
environment (``password_env``, ``secrets_env``), never from the file or the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import tomllib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SmtpConfig(_Config):
    host: str
    port: int = 587
    use_tls: bool = False  # implicit TLS (port 465)
    start_tls: bool | None = None  # None: upgrade when the server offers it
    username: str | None = None
    password_env: str | None = None  # the environment variable holding the password
    sender: str = Field("escalations@localhost", alias="from")
    timeout: float = 10.0

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None


class ChatConfig(_Config):
    url: str


class WebhookConfig(_Config):
    url: str
    # Standard Webhooks secrets ("whsec_" + base64), newest first; all of them sign each message.
    secrets: list[str] = []
    secrets_env: str | None = None  # or: an environment variable holding them, space-separated

    def signing_secrets(self) -> list[str]:
        found = list(self.secrets)
        if self.secrets_env:
            found += os.environ.get(self.secrets_env, "").split()
        return found


OPERATOR_CHANNELS = ("email", "chat", "webhook")


class ChannelsConfig(_Config):
    smtp: SmtpConfig | None = None
    chat: dict[str, ChatConfig] = {}
    webhooks: dict[str, WebhookConfig] = {}
    # Who the deadline watchdog tells of an overdue deadline: "email:<address>", "chat:<channel>", "webhook:<name>".
    operators: list[str] = []

    @field_validator("operators")
    @classmethod
    def _operator_targets(cls, targets: list[str]) -> list[str]:
        for target in targets:
            channel, _, address = target.partition(":")
            if channel not in OPERATOR_CHANNELS or not address.strip():
                raise ValueError(
                    f"operator target {target!r} must be email:<address>, chat:<channel> or webhook:<name>"
                )
        return targets

    # Where links in messages point (the API's public address).
    base_url: str = "http://127.0.0.1:8000"

    @classmethod
    def from_file(cls, path: Path) -> ChannelsConfig:
        try:
            return cls.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ValueError(f"notification config {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"notification config {path} is not TOML: {exc}") from None
        except ValidationError as exc:
            raise ValueError(f"notification config {path} is invalid: {exc}") from None

    @classmethod
    def from_env(cls) -> ChannelsConfig:
        path = os.environ.get("ESCALATIONS_NOTIFY_CONFIG")
        config = cls.from_file(Path(path)) if path else cls()
        # The older ESCALATIONS_WEBHOOKS (name -> URL) still configures unsigned-by-default webhooks.
        legacy = json.loads(os.environ.get("ESCALATIONS_WEBHOOKS", "{}") or "{}")
        if legacy:
            hooks = {name: WebhookConfig(url=url) for name, url in legacy.items()} | dict(config.webhooks)
            config = config.model_copy(update={"webhooks": hooks})
        return config


class NotConfigured(Exception):
    """A channel or target a notification names is not configured (a configuration error, never a send)."""


@dataclass(frozen=True)
class Message:
    """What one delivery says, whatever the channel."""

    delivery_id: str
    subject: str
    text: str
    link: str | None
    payload: dict[str, Any]


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: ``v1,`` + base64(HMAC-SHA256(key, ``id.timestamp.body``))."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def webhook_headers(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if secrets:
        headers["webhook-signature"] = " ".join(sign(s, msg_id, timestamp, body) for s in secrets)
    return headers


class Senders:
    """Sends one message on one channel; raises on failure (the deliverer records and retries)."""

    def __init__(self, config: ChannelsConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self._http = http

    async def email(self, to: str, message: Message) -> None:
        smtp = self.config.smtp
        if smtp is None:
            raise NotConfigured("no SMTP server configured ([smtp] in the notification config)")
        mail = EmailMessage()
        mail["From"] = smtp.sender
        mail["To"] = to
        mail["Subject"] = message.subject
        mail["Message-ID"] = f"<{message.delivery_id}@escalations>"
        mail["X-Escalations-Delivery-Id"] = message.delivery_id
        mail.set_content(message.text + (f"\n\nAcknowledge: {message.link}\n" if message.link else "\n"))
        await aiosmtplib.send(
            mail,
            hostname=smtp.host,
            port=smtp.port,
            use_tls=smtp.use_tls,
            start_tls=smtp.start_tls,
            username=smtp.username,
            password=smtp.password(),
            timeout=smtp.timeout,
        )

    async def chat(self, channel: str, mention: str | None, message: Message) -> None:
        found = self.config.chat.get(channel)
        if found is None:
            raise NotConfigured(f"chat channel {channel!r} is not configured ([chat.{channel}])")
        who = f"{mention} " if mention else ""
        text = f"{who}*{message.subject}*\n{message.text}" + (f"\n<{message.link}|Acknowledge>" if message.link else "")
        response = await self._http.post(
            found.url,
            json={"text": text, "delivery_id": message.delivery_id},
            headers={"X-Escalations-Delivery-Id": message.delivery_id},
            timeout=10.0,
        )
        if not response.is_success:
            raise RuntimeError(f"chat webhook answered HTTP {response.status_code}")

    async def webhook(self, name: str, message: Message, timestamp: int) -> None:
        found = self.config.webhooks.get(name)
        if found is None:
            raise NotConfigured(f"webhook {name!r} is not configured ([webhooks.{name}])")
        body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = webhook_headers(found.signing_secrets(), f"msg_{message.delivery_id}", timestamp, body)
        headers["Idempotency-Key"] = message.delivery_id
        response = await self._http.post(found.url, content=body, headers=headers, timeout=10.0)
        if not response.is_success:
            raise RuntimeError(f"webhook answered HTTP {response.status_code}")


async def configuration_problems(db: Any, config: ChannelsConfig, policy: Any = None) -> list[str]:
    """Channels and targets referenced but not configured: chat channels the directory names, webhook
    targets and channels the policy in force names (the latest published, else ``policy``; read by ``db``, a
    pool or a connection), and deliveries
    waiting on such a channel now. Each is a configuration error, never a silent failure."""
    problems: list[str] = []
    rooms = await db.fetch(
        "SELECT kind, id, doc->>'chat_channel' AS room FROM directory_entries "
        "WHERE kind IN ('people', 'teams') AND doc ? 'chat_channel' ORDER BY kind, id"
    )
    for row in rooms:
        if row["room"] not in config.chat:
            problems.append(f"{row['kind']} {row['id']!r} names chat channel {row['room']!r}, not configured")
    content = await db.fetchval("SELECT content FROM policy_versions ORDER BY seq DESC LIMIT 1")
    # The policy in force: the latest published version, else the worker's file (``policy``).
    in_force = json.loads(content) if content is not None else (policy.content() if policy is not None else None)
    if in_force is not None:
        policy = in_force
        for level in policy.get("escalation", {}).get("levels", []):
            for target in level.get("notify", []):
                if target.removeprefix("webhook:") not in config.webhooks:
                    problems.append(f"level {level.get('level')} notifies {target!r}, not configured")
        for rule in (policy.get("notifications") or {}).get("rules", []):
            if "email" in rule.get("channels", []) and config.smtp is None:
                problems.append(
                    f"notification rule on {rule.get('on')!r} sends email, and no SMTP server is configured"
                )
    for target in config.operators:
        channel, _, address = target.partition(":")
        if (
            (channel == "email" and config.smtp is None)
            or (channel == "chat" and address not in config.chat)
            or (channel == "webhook" and address not in config.webhooks)
        ):
            problems.append(f"the deadline watchdog tells operator {target!r}, not configured")
    waiting = await db.fetch(
        "SELECT channel, address, count(*) AS n FROM deliveries WHERE status = 'pending' "
        "AND last_error LIKE 'not configured%' GROUP BY channel, address ORDER BY channel, address"
    )
    for row in waiting:
        problems.append(f"{row['n']} {row['channel']} deliveries to {row['address']!r} wait: not configured")
    return problems
