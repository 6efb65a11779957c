"""The operator console in a real headless Chromium (Debian's), driven by Playwright, over the real stack.

`make test` installs Chromium (scripts/ensure-chromium) and Playwright (pyproject);
the browser is never downloaded. Screenshots land in docs/ for the README.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from events.database import create_database, create_pool, drop_database
from events.store import EventStore
from projections import all_projections
from projections.runner import Projector
from samples.cases import Case
from samples.histories import append_history, generate_case
from tests.api_support import ApiStack, api_stack, open_body, post
from workflows.core.vocabulary import Role, Severity

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parent.parent
# Screenshots go under .data/ (untracked); CONSOLE_SCREENSHOTS=docs refreshes the README's pictures.
DOCS = ROOT / os.environ.get("CONSOLE_SCREENSHOTS", ".data/screenshots")
DOCS.mkdir(parents=True, exist_ok=True)
CONSOLE_POLICY = Path(__file__).resolve().parent / "policies" / "console.toml"
WAIT_MS = 30_000
# Every assertion waits up to WAIT_MS, not Playwright's 5 s: the page polls the API, and on a busy
# machine a poll, a render or a command's round trip can take longer than 5 s without anything being wrong.
expect.set_options(timeout=WAIT_MS)


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (scripts/ensure-chromium)")
    return found


@pytest.fixture(scope="module")
async def console_database(server_dsn: str) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A database of the console tests' own, holding 300 generated past cases so the metrics have a history."""
    name = f"esc_console_{uuid.uuid4().hex[:12]}"
    url = await create_database(server_dsn, name)
    pool = await create_pool(url, max_size=20)
    rng = random.Random(8)
    await append_history(EventStore(pool), [generate_case(rng, i) for i in range(300)])
    yield url, pool
    await pool.close()
    await drop_database(server_dsn, name)


@pytest.fixture
async def stack(dev_env: WorkflowEnvironment, console_database: tuple[str, asyncpg.Pool]) -> AsyncIterator[ApiStack]:
    url, pool = console_database
    async with api_stack(dev_env.client, pool, url, CONSOLE_POLICY) as s:
        yield s


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in(browser: Browser, stack: ApiStack, role: Role) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(stack.base_url + "/console")
    # Keyboard only: the token field has focus, Enter submits.
    await expect(page.get_by_label("API token")).to_be_focused()
    await page.keyboard.type(stack.tokens[role])
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Escalation board")).to_be_visible()
    await expect(page.locator("#whoami")).to_contain_text(f"({role.value})")
    return page


async def open_case(
    stack: ApiStack, title: str, customer: str = "acme", tier: str = "strategic", severity="sev1"
) -> str:
    """Opens a case over the API; sev1 for a strategic customer is P1 (acknowledge within 8 s here)."""
    body = open_body(title=title, severity=severity, customer={"id": customer, "name": customer.upper(), "tier": tier})
    async with httpx.AsyncClient(timeout=30) as http:
        response = await post(http, stack, "/v1/escalations", Role.SERVICE, body)
    assert response.status_code == 201, response.text
    return response.json()["state"]["case_id"]


async def open_p1_case(stack: ApiStack, title: str) -> str:
    return await open_case(stack, title)


async def test_board_breach_acknowledge_timeline_as_of_and_metrics(stack: ApiStack, browser: Browser) -> None:
    page = await signed_in(browser, stack, Role.AGENT)
    # Other tests share the database: show only this test's customer.
    customer = f"northwind-{uuid.uuid4().hex[:6]}"
    await page.get_by_label("Customer id").fill(customer)
    await page.get_by_label("Customer id").press("Enter")
    case_id = await open_case(stack, "Checkout down in EU", customer)
    row = page.locator(f'tr[data-case="{case_id}"]')
    await expect(row).to_be_visible(timeout=WAIT_MS)  # appears without a reload
    await expect(row).to_contain_text("Acknowledge")
    await expect(row.locator(".countdown")).to_have_text(re.compile(r"^(in|overdue by) "))
    for title, tier, severity in (
        ("Invoices sent twice", "enterprise", "sev2"),  # P2
        ("Slow dashboard", "enterprise", "sev3"),  # P3
        ("Typo in export header", "standard", "sev4"),  # P4
    ):
        await open_case(stack, title, customer, tier, severity)
    await expect(page.locator("tbody tr")).to_have_count(4, timeout=WAIT_MS)
    # The P1 acknowledge deadline is 8 s: the row turns breached by itself.
    await expect(row.locator(".badge")).to_have_text("BREACHED", timeout=WAIT_MS)
    await expect(row).to_have_class(re.compile("breached"))
    await page.screenshot(path=str(DOCS / "console-board.png"), full_page=True)

    # Filters narrow the board.
    await page.get_by_label("Priority").select_option("P4")
    await expect(row).to_have_count(0, timeout=WAIT_MS)
    await page.get_by_label("Priority").select_option("P1")
    await expect(row).to_be_visible(timeout=WAIT_MS)

    await row.get_by_role("link").click()
    await expect(page.locator("#verification")).to_have_text(re.compile(r"^Hash chain verified: \d+ events"))
    await expect(page.locator("#timeline")).to_contain_text("deadline", timeout=WAIT_MS)

    # A form shows the API's own validation message beside the field.
    await page.locator('details.command:has(form[data-command="assign"]) > summary').click()
    assign = page.locator('form[data-command="assign"]')
    await assign.get_by_role("button", name="Assign").click()
    await expect(assign.locator('[data-error-for="owner"]')).to_have_text(re.compile(r"\S"))
    await expect(assign.get_by_label(re.compile("^Owner"))).to_have_attribute("aria-invalid", "true")

    await page.locator('details.command:has(form[data-command="acknowledge"]) > summary').click()
    await page.locator('form[data-command="acknowledge"]').get_by_role("button", name="Acknowledge").click()
    await expect(page.locator("#timeline")).to_contain_text("acknowledged the case", timeout=WAIT_MS)
    await expect(page.locator("#state-facts")).to_contain_text("In progress")
    await expect(page.locator('form[data-command="acknowledge"]')).to_have_count(0)

    # As of the first event, the case was just opened.
    # Keyboard: Home moves the slider to the first event.
    await page.get_by_label("Position in the timeline").focus()
    await page.keyboard.press("Home")
    await expect(page.locator('#asof-state [data-fact="Events so far"]')).to_have_text("1", timeout=WAIT_MS)
    await expect(page.locator('#asof-state [data-fact="Status"]')).to_have_text("Open")
    await expect(page.locator("#timeline li.future").first).to_be_visible()
    # The picker: four seconds after opening (before the 6 s warning) only the opening had happened.
    instant = await page.evaluate(
        """() => {
            const d = new Date(new Date(document.querySelector('#timeline li').dataset.at).getTime() + 4000);
            return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
        }"""
    )
    await page.get_by_label("Position in the timeline").press("End")
    await expect(page.locator('#asof-state [data-fact="Status"]')).to_have_text("In progress", timeout=WAIT_MS)
    await page.get_by_label("Or pick an instant (local time)").fill(instant)
    await expect(page.locator('#asof-state [data-fact="Events so far"]')).to_have_text("1", timeout=WAIT_MS)
    await expect(page.locator('#asof-state [data-fact="Level"]')).to_have_text("1")
    await page.screenshot(path=str(DOCS / "console-case.png"), full_page=True)

    await page.get_by_role("link", name="Metrics").click()
    await expect(page.get_by_role("heading", name="Metrics")).to_be_visible()
    for chart in ("#chart-ack", "#chart-resolve", "#chart-breach-kind", "#chart-breach-level", "#chart-paused"):
        await expect(page.locator(f"{chart} svg")).to_be_visible()
    await expect(page.locator("#chart-breach-kind svg rect").first).to_be_visible(timeout=WAIT_MS)
    await page.screenshot(path=str(DOCS / "console-metrics.png"), full_page=True)
    await page.close()


async def test_a_role_sees_only_what_it_may_do_and_the_api_refuses_the_rest(stack: ApiStack, browser: Browser) -> None:
    case_id = await open_p1_case(stack, "Invoices duplicated")
    agent = await signed_in(browser, stack, Role.AGENT)
    await agent.goto(f"{stack.base_url}/console#/case/{case_id}")
    await expect(agent.locator('form[data-command="acknowledge"]')).to_have_count(1, timeout=WAIT_MS)
    # Withdrawing is for managers and above: an agent is not offered it...
    await expect(agent.locator('form[data-command="withdraw"]')).to_have_count(0)
    # ...and forcing it from the page's own session is refused by the API, naming the rule.
    forced = await agent.evaluate(
        """async (caseId) => {
            const r = await fetch(`/v1/escalations/${caseId}/withdraw`, {method: "POST",
                headers: {"Content-Type": "application/json",
                          Authorization: `Bearer ${sessionStorage.getItem("escalations.token")}`},
                body: JSON.stringify({reason: "duplicate"})});
            return [r.status, (await r.json()).rule];
        }""",
        case_id,
    )
    assert forced == [403, "permission.withdraw"]

    auditor = await signed_in(browser, stack, Role.AUDITOR)
    await auditor.goto(f"{stack.base_url}/console#/case/{case_id}")
    await expect(auditor.locator("#no-actions")).to_contain_text("Nothing your role (auditor) may do")
    await expect(auditor.locator("form[data-command]")).to_have_count(0)
    await expect(auditor.locator("#verification")).to_be_visible()

    manager = await signed_in(browser, stack, Role.MANAGER)
    await manager.goto(f"{stack.base_url}/console#/case/{case_id}")
    await expect(manager.locator('form[data-command="withdraw"]')).to_have_count(1, timeout=WAIT_MS)


async def test_a_bad_token_is_refused_with_the_rule(stack: ApiStack, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(stack.base_url + "/console")
    await page.get_by_label("API token").fill("esc_not-a-real-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("auth.bad_token")
    await expect(page.locator("#nav")).to_be_hidden()


async def test_every_control_has_a_label_and_text_meets_wcag_aa_contrast(stack: ApiStack, browser: Browser) -> None:
    case_id = await open_p1_case(stack, "Contrast check")
    page = await signed_in(browser, stack, Role.MANAGER)
    await expect(page.locator(f'tr[data-case="{case_id}"]')).to_be_visible(timeout=WAIT_MS)
    for view, ready in (
        ("#/board", f'tr[data-case="{case_id}"]'),
        (f"#/case/{case_id}", "#verification"),
        ("#/metrics", "#chart-ack svg"),
    ):
        await page.goto(f"{stack.base_url}/console{view}")
        await expect(page.locator(ready)).to_be_visible(timeout=WAIT_MS)
        await page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        unlabelled = await page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                .filter(el => el.type !== 'hidden' && el.labels.length === 0 && !el.getAttribute('aria-label'))
                .map(el => el.outerHTML)"""
        )
        assert unlabelled == [], f"{view}: controls without a label: {unlabelled}"
        low = await page.evaluate(CONTRAST_CHECK)
        assert low == [], f"{view}: text below 4.5:1 contrast: {low[:5]}"


# For every element with its own text: the ratio of its colour to the first opaque
# background among it and its ancestors (WCAG 2.x relative luminance).
CONTRAST_CHECK = """() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.99)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(el);
    if (!own || style.visibility === 'hidden' || style.display === 'none' || el.closest('svg, .visually-hidden, [hidden], .skip')) continue;
    const a = lum(rgb(style.color).slice(0, 3)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)} "${el.textContent.trim().slice(0, 30)}"`);
  }
  return low;
}"""


async def test_the_board_follows_the_cursor_past_500_cases(
    dev_env: WorkflowEnvironment, own_db: tuple[asyncpg.Pool, str], browser: Browser
) -> None:
    """Written to the store directly (open cases, never acknowledged): 620 on the board, not the first 500."""
    pool, url = own_db
    start = datetime.now(UTC) + timedelta(days=1)  # their deadlines lie ahead: they stay open
    histories = [Case(start=start, case_id=f"board-{i:04d}", severity=Severity.SEV4).events for i in range(620)]
    await append_history(EventStore(pool), histories)
    async with api_stack(dev_env.client, pool, url, CONSOLE_POLICY) as stack:
        await Projector(pool, all_projections()).catch_up()
        page = await signed_in(browser, stack, Role.MANAGER)
        await expect(page.locator("p.status-line")).to_contain_text("620 open cases", timeout=30_000)
        await expect(page.locator("tr[data-case]")).to_have_count(620)


async def test_the_board_lists_resolved_cases_awaiting_follow_up(
    dev_env: WorkflowEnvironment, own_db: tuple[asyncpg.Pool, str], browser: Browser
) -> None:
    """Two resolved cases await their follow-up, one has it recorded, one is still open: the section lists two."""
    from samples.cases import command
    from workflows.core.commands import Acknowledge, CompleteFollowUp, ProposeResolution, RecordCustomerResponse
    from workflows.core.vocabulary import RootCause

    pool, url = own_db
    start = datetime.now(UTC) - timedelta(days=2)

    def resolved(case_id: str, followed_up: bool) -> Case:
        case = Case(start=start - timedelta(days=25 if followed_up else 0), case_id=case_id, severity=Severity.SEV4)
        case.do(command(Acknowledge), after=timedelta(minutes=5))
        case.do(
            command(ProposeResolution, summary="s", root_cause=RootCause.CONFIGURATION, root_cause_text="t"),
            after=timedelta(hours=1),
        )
        case.do(command(RecordCustomerResponse, accepted=True), after=timedelta(minutes=10))
        if followed_up:
            case.do(command(CompleteFollowUp, satisfaction=5), after=timedelta(days=20))  # once it is due
        return case

    histories = [
        resolved("fu-waiting-1", False).events,
        resolved("fu-waiting-2", False).events,
        resolved("fu-done", True).events,
        Case(start=datetime.now(UTC), case_id="fu-open", severity=Severity.SEV4).events,
    ]
    await append_history(EventStore(pool), histories)
    async with api_stack(dev_env.client, pool, url, CONSOLE_POLICY) as stack:
        await Projector(pool, all_projections()).catch_up()
        page = await signed_in(browser, stack, Role.MANAGER)
        await expect(page.get_by_role("heading", name="Awaiting follow-up")).to_be_visible()
        await expect(page.locator("#follow-up-status")).to_contain_text("2 cases awaiting follow-up")
        rows = page.locator("tr[data-follow-up]")
        await expect(rows).to_have_count(2)
        assert sorted([await r.get_attribute("data-follow-up") for r in await rows.all()]) == [
            "fu-waiting-1",
            "fu-waiting-2",
        ]


async def test_the_board_filters_by_team_and_mine_and_the_case_page_names_owner_team_and_responders(
    dev_env: WorkflowEnvironment, own_db: tuple[asyncpg.Pool, str], browser: Browser
) -> None:
    from events.directory_store import DirectoryStore
    from workflows.core.events import Actor
    from workflows.directory_files import EXAMPLE_DIRECTORY, import_directory, team_calendar
    from workflows.policy_files import DEFAULT_POLICY_PATH

    pool, url = own_db
    directory = DirectoryStore(pool, team_calendar)
    admin = Actor(id="root", role=Role.ADMIN)
    await import_directory(directory, EXAMPLE_DIRECTORY.read_text(), actor=admin, reason="example")
    async with api_stack(dev_env.client, pool, url, DEFAULT_POLICY_PATH) as stack:
        async with httpx.AsyncClient(timeout=30) as http:
            me = (await http.get(stack.base_url + "/v1/me", headers=stack.headers(Role.AGENT))).json()["name"]
            # The signed-in agent is the platform team's only member, working around the clock.
            await directory.put("people", me, {"id": me, "name": "Agent Smith"}, actor=admin)
            platform = await directory.get("teams", "platform")
            assert platform is not None
            await directory.put(
                "teams", "platform", {**platform, "members": [me], "on_call": [], "calendar": None}, actor=admin
            )
            body = open_body(title="Checkout down", severity="sev1", customer={"id": "acme"})  # the account fills it
            opened = await post(http, stack, "/v1/escalations", Role.SERVICE, body)
            assert opened.status_code == 201, opened.text
            case_id = opened.json()["state"]["case_id"]
            assert (opened.json()["state"]["owner"], opened.json()["state"]["team"]) == (me, "platform")
        page = await signed_in(browser, stack, Role.AGENT)
        row = page.locator(f'tr[data-case="{case_id}"]')
        await expect(row).to_contain_text("platform")
        await page.get_by_label("Team").fill("support")
        await page.get_by_label("Team").press("Enter")
        await expect(row).to_have_count(0)
        await page.get_by_label("Team").fill("")
        await page.get_by_label("Team").press("Enter")
        await page.get_by_label("Owner").fill("someone-else")
        await page.get_by_label("Owner").press("Enter")
        await expect(row).to_have_count(0)
        await page.get_by_label("Mine").check()
        await expect(row).to_be_visible()
        await row.get_by_role("link").click()
        facts = page.locator("#state-facts")
        await expect(facts.locator('[data-fact="Owner"]')).to_have_text(me)
        await expect(facts.locator('[data-fact="Team"]')).to_have_text("platform")
        await expect(facts.locator('[data-fact="Responders now"]')).to_contain_text("Agent Smith (Owner)")


async def test_the_inbox_shows_its_unread_count_and_dead_letters_can_be_re_driven(
    dev_env: WorkflowEnvironment, own_db: tuple[asyncpg.Pool, str], browser: Browser
) -> None:
    """Deliveries written as the outbox writes them: two inbox notifications for the signed-in manager, and a
    dead webhook delivery."""
    import json as jsonlib

    pool, url = own_db
    now = datetime.now(UTC)
    async with api_stack(dev_env.client, pool, url, CONSOLE_POLICY) as stack:
        async with httpx.AsyncClient(timeout=30) as http:
            me = (await http.get(stack.base_url + "/v1/me", headers=stack.headers(Role.MANAGER))).json()["name"]
        for n, (recipient, channel, status) in enumerate(
            [(me, "inbox", "delivered"), (me, "inbox", "delivered"), ("webhook:pager", "webhook", "dead")]
        ):
            delivery = uuid.uuid4()
            await pool.execute(
                "INSERT INTO deliveries (id, event_id, case_id, kind, recipient, channel, address, priority, message, "
                "status, attempts, created_at, next_attempt_at, give_up_at, last_error) "
                "VALUES ($1, $2, 'c-ui', 'breach', $3, $4, $3, 'P1', $5, $6, 3, $7, $7, $7, $8)",
                delivery,
                uuid.uuid4(),
                recipient,
                channel,
                jsonlib.dumps({"subject": f"Breach {n}", "text": "acknowledgement missed"}),
                status,
                now,
                "RuntimeError: webhook answered HTTP 500" if status == "dead" else None,
            )
            if channel == "inbox":
                await pool.execute(
                    "INSERT INTO inbox (delivery_id, person, case_id, kind, subject, text, created_at) "
                    "VALUES ($1, $2, 'c-ui', 'breach', $3, 'acknowledgement missed', $4)",
                    delivery,
                    me,
                    f"Breach {n}",
                    now,
                )
        page = await signed_in(browser, stack, Role.MANAGER)
        await expect(page.locator("#unread")).to_have_text("2")
        await page.get_by_role("link", name=re.compile("^Inbox")).click()
        await expect(page.locator("#inbox li")).to_have_count(2)
        await page.locator("#inbox li").first.get_by_role("button", name="Mark read").click()
        await expect(page.locator("#unread")).to_have_text("1")
        await page.get_by_role("link", name="Dead letters").click()
        row = page.locator("#dead-letters tbody tr")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("HTTP 500")
        await row.get_by_role("button", name="Re-drive").click()
        await expect(row).to_have_count(0)
        assert await pool.fetchval("SELECT status FROM deliveries WHERE channel = 'webhook'") == "pending"
