"""Scenario ``notify``: from a breach being stored to the SMTP server accepting its email.

Ours: cases are built through the pure core (a P1 left alone until its acknowledgement breaches). Their
openings and warnings are stored first and projected (the outbox knows every case, as it would have for
minutes). Then, at a steady rate, each case's breach tick is appended as the workflow appends it (the breach
and the escalation it causes, one append); the projector queues one email per breach (the policy's only
rule: a breach emails one person) and the deliverer sends it to a local SMTP server (aiosmtpd), which notes
when it accepted each message. Latency = accepted - the append's return (the breach committed).

Baseline, in the same run, on the same server: the same messages sent straight with ``aiosmtplib`` at the
same instants. Latency = accepted - the instant the message was due to go.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import aiosmtplib
import asyncpg
from aiosmtpd.controller import Controller

from bench.net import free_port
from bench.report import Row, percentile
from events.directory_store import DirectoryStore
from events.store import EventStore, head_position
from projections.channels import ChannelsConfig, SmtpConfig
from projections.delivery import Deliverer
from projections.notifications import NotificationOutboxProjection
from projections.runner import Projector, checkpoint
from samples.cases import Case
from workflows.core.events import Actor, Customer, DeadlineBreached, Escalated, case_id_of
from workflows.core.policy import Policy
from workflows.core.vocabulary import CustomerTier, Role, Severity
from workflows.directory_files import import_directory, team_calendar
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy


class _Accepting:
    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}  # Message-ID -> wall-clock seconds

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        for line in envelope.content.split(b"\r\n"):  # type: ignore[attr-defined]
            if line.lower().startswith(b"message-id:"):
                self.accepted.setdefault(line.split(b":", 1)[1].strip().decode(), time.time())
                break
        return "250 accepted"


def _policy() -> Policy:
    content = load_policy(DEFAULT_POLICY_PATH).content()
    content["notifications"] = {"rules": [{"on": "breach", "to": ["person:bench-mgr"], "channels": ["email"]}]}
    return Policy.model_validate(content)


async def notify_latency(pool: asyncpg.Pool, breaches: int, rate: float) -> list[Row]:
    port = free_port()
    handler = _Accepting()
    smtp = Controller(handler, hostname="127.0.0.1", port=port)
    smtp.start()
    config = ChannelsConfig(smtp=SmtpConfig(host="127.0.0.1", port=port, start_tls=False))
    await import_directory(
        DirectoryStore(pool, team_calendar),
        '[[people]]\nid = "bench-mgr"\nname = "Bench Manager"\nemail = "mgr@bench.example"\n',
        actor=Actor(id="bench", role=Role.ADMIN),
        reason="bench",
    )
    policy = _policy()
    start = datetime.now(UTC) - timedelta(hours=1)
    before_breach: list[list] = []
    breach_ticks: list[list] = []
    for i in range(breaches):  # a P1 left alone 16 minutes: opened, warned, breached, escalated
        case = Case(
            policy=policy,
            case_id=f"notify-{i}",
            severity=Severity.SEV1,
            start=start,
            customer=Customer(id="bench-co", name="Bench Co", tier=CustomerTier.STRATEGIC),
        )
        case.advance(timedelta(minutes=16))
        events = case.events
        first_breach = next(n for n, e in enumerate(events) if isinstance(e.data, DeadlineBreached))
        escalation = next(n for n, e in enumerate(events) if n > first_breach and isinstance(e.data, Escalated))
        before_breach.append(events[:first_breach])
        breach_ticks.append(events[first_breach : escalation + 1])
    store = EventStore(pool)
    # Earlier scenarios' events are not this one's business: the outbox starts at the head.
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO projection_checkpoints (name, position) VALUES ($1, (SELECT coalesce(max(position), 0) "
            "FROM events)) ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
            NotificationOutboxProjection.name,
        )
    stop = asyncio.Event()
    outbox, deliverer = NotificationOutboxProjection(channels=config), Deliverer(pool, config)
    outbox.hand_to(deliverer.take, deliverer.lease_length)  # as the projector process wires them
    tasks = [
        asyncio.create_task(Projector(pool, [outbox], poll_interval=0.5).run(stop)),
        asyncio.create_task(deliverer.run(stop)),
    ]
    stored_at: dict[str, float] = {}  # case id -> when its breach's append returned
    try:
        for events in before_breach:
            await store.append(events[0].stream_id, 0, events)
        await _projected(pool)
        for events in breach_ticks:  # at a steady rate, as breaches arrive
            await store.append(events[0].stream_id, events[0].version - 1, events)
            stored_at[case_id_of(events[0].stream_id)] = time.time()
            await asyncio.sleep(1 / rate)
        deadline = time.monotonic() + 120
        while len(handler.accepted) < breaches and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    rows = await pool.fetch("SELECT id, case_id FROM deliveries WHERE channel = 'email' AND kind = 'breach'")
    ours = [
        (handler.accepted[f"<{r['id']}@escalations>"] - stored_at[r["case_id"]]) * 1000
        for r in rows
        if f"<{r['id']}@escalations>" in handler.accepted
    ]
    lost = breaches - len(ours)

    baseline_handler = _Accepting()
    smtp.stop()
    smtp = Controller(baseline_handler, hostname="127.0.0.1", port=port)
    smtp.start()
    due: dict[str, float] = {}
    try:
        sends = []
        for i in range(breaches):
            key = f"<baseline-{i}@bench>"
            message = EmailMessage()
            message["From"], message["To"], message["Message-ID"] = "escalations@localhost", "mgr@bench.example", key
            message["Subject"] = f"[P1] Benchmark case: acknowledgement missed ({i})"
            message.set_content("P1 · Benchmark case\nacknowledgement missed\n")
            due[key] = time.time()
            sends.append(
                asyncio.create_task(aiosmtplib.send(message, hostname="127.0.0.1", port=port, start_tls=False))
            )
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*sends)
    finally:
        smtp.stop()
    baseline = [(baseline_handler.accepted[k] - due[k]) * 1000 for k in due]
    if lost:
        print(f"notify: {lost} of {breaches} breach emails not accepted within 120 s")
    return [
        Row(
            f"notify: breach stored -> SMTP accepted p50 ({breaches}, {rate:.0f}/s)",
            "ms",
            percentile(ours, 50),
            percentile(baseline, 50),
            "aiosmtplib straight to the same server",
        ),
        Row(
            f"notify: breach stored -> SMTP accepted p99 ({breaches}, {rate:.0f}/s)",
            "ms",
            percentile(ours, 99),
            percentile(baseline, 99),
            "aiosmtplib straight to the same server",
        ),
    ]


async def _projected(pool: asyncpg.Pool, timeout: float = 300) -> None:
    """Until the outbox has applied everything stored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with pool.acquire() as conn:
            if await checkpoint(conn, NotificationOutboxProjection.name) >= await head_position(conn):
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("the outbox did not catch up with the openings")
