"""The inbox page in a real browser (issue 12, "must show" 1, 3 and 5; docs/inbox.md).

One stack serves the module, as in tests/test_customers.py: the Graph stand-in (posting
signed sent/delivered/read statuses back after every send), the engine consuming its own
topic, and the receiver serving the page, `/v1` and the webhooks, each on a free port,
against the session's broker and redis-server. Debian's Chromium runs headless under
Playwright, a fresh context per user; everything on the page is found by its role and
exact accessible name, as a screen reader would. Every inbox page is watched: a console
error, a page error, a dialog or a `securitypolicyviolation` fails the test.

Two channels: "Support EU" for the agent's day and the security checks, and "Northwind
Outfitters" for the screenshots (docs/screenshots/, shown in the README), so that what
the screenshots show is only realistic use.
"""

import asyncio
import contextlib
import functools
import json
import re
import struct
import time
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    Request,
    Route,
    ViewportSize,
    async_playwright,
    expect,
)
from redis.asyncio import Redis

from devstack.graph_standin import Fault, StandIn
from devstack.graph_standin import create_app as create_standin
from devstack.samples import WABA_ID, text_message, webhook
from devstack.signing import sign
from engine.applier import Applier
from parley.channels import Channel, ChannelSettings
from parley.events import (
    Actor,
    AgentReply,
    CustomerMessage,
    Event,
    Identity,
    Move,
    Payload,
    Role,
)
from parley.settings import Settings
from parley.state import Outcome
from store.conversations import ConversationStore
from tests.api_tools import ADMIN, bearer, call, start_api, start_engine
from tests.clock import Clock

Api = TestClient[web.Request, web.Application]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
STATIC = ROOT / "inbox" / "static"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
WEBHOOK = "/webhooks/whatsapp"
COOKIE = "parley_session"
LIVE_WITHIN_S = 1.0  # a customer's message is in the list this soon after the webhook
DEADLINE_MS = 10_000  # for what takes several hops (a reply's statuses, the engine)
TICKS = ["queued", "accepted", "sent", "delivered", "read"]

DESK = Channel(
    id="106540352242931",
    app_secret="desk-app-secret-0123456789",
    verify_token="desk-verify-token",
    access_token="desk-graph-token",
    settings=ChannelSettings(display_name="Support EU", waba_id=WABA_ID),
)
SHOP = Channel(
    id="106540352242932",
    app_secret="shop-app-secret-9876543210",
    verify_token="shop-verify-token",
    access_token="shop-graph-token",
    settings=ChannelSettings(display_name="Northwind Outfitters", waba_id=WABA_ID),
)
CHANNELS = [DESK, SHOP]

# The people: (id, name, admin), then their roles per channel.
PEOPLE = [
    ("olivia.hart", "Olivia Hart", True),
    ("maria.lopez", "María López", False),
    ("sam.okafor", "Sam Okafor", False),
    ("jonas.weber", "Jonas Weber", False),
    ("ana.silva", "Ana Silva", False),
    ("tom.becker", "Tom Becker", False),
    ("priya.nair", "Priya Nair", False),
]
GRANTS = {
    DESK: {"maria.lopez": "contributor", "sam.okafor": "supervisor", "jonas.weber": "viewer"},
    SHOP: {"priya.nair": "supervisor", "jonas.weber": "viewer"},
}
TEAM = ("care-eu", "Customer care EU", ["ana.silva", "tom.becker"])  # contributors on SHOP

# Page-side helpers, run with page.evaluate (page scripts themselves stay CSP-bound).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI} ${event.sample}`);
});
"""
WATCH_ARRIVAL = """
(name) => {
  window.__arrivedAt = null;
  const check = () => {
    if (window.__arrivedAt !== null) return;
    for (const row of document.querySelectorAll('[role="tabpanel"] button')) {
      if (row.textContent.includes(name) && row.checkVisibility()) {
        window.__arrivedAt = performance.timeOrigin + performance.now();
        observer.disconnect();
        return;
      }
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(document.body, { subtree: true, childList: true, characterData: true });
}
"""
WATCH_TICKS = """
(text) => {
  window.__ticks ??= {};
  const seen = (window.__ticks[text] = []);
  const record = () => {
    for (const item of document.querySelectorAll('[role="log"] > li.outbound')) {
      const status = item.dataset.status;
      if (item.textContent.includes(text) && status && seen.at(-1) !== status) seen.push(status);
    }
  };
  new MutationObserver(record).observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"],
  });
}
"""
INLINE_MARKUP = """
() => {
  const found = [];
  for (const node of document.querySelectorAll("*")) {
    for (const name of node.getAttributeNames()) {
      if (name === "style" || name.startsWith("on")) found.push(`<${node.localName} ${name}="${node.getAttribute(name)}">`);
    }
  }
  return found;
}
"""


# The stack


class Stack(msgspec.Struct, frozen=True, kw_only=True):
    api: Api
    standin: StandIn
    redis: Redis
    base: str  # where the browser reaches the receiver: http://127.0.0.1:<port>
    tokens: dict[str, str]  # user id -> their token

    async def webhook(
        self, channel: Channel, phone: str, name: str, text: str, ago_s: float = 0
    ) -> str:
        """A customer's signed text message, sent `ago_s` ago; its wamid once the
        receiver answered 200."""
        wamid = f"wamid.{uuid.uuid4().hex}"
        message = text_message(channel.id, phone, wamid, text, int(time.time() - ago_s), name)
        await self.post_webhook(channel, message)
        return wamid

    async def customer_sends(
        self, channel: Channel, phone: str, name: str, content: dict[str, Any], ago_s: float = 0
    ) -> str:
        """A customer's signed message of any type (`content`: {"type": "image", "image":
        {...}} and the like, maybe with a "context"); its wamid once answered 200."""
        wamid = f"wamid.{uuid.uuid4().hex}"
        message = {"from": phone, "id": wamid, "timestamp": str(int(time.time() - ago_s))}
        contact = {"profile": {"name": name}, "wa_id": phone}
        value = {"contacts": [contact], "messages": [{**message, **content}]}
        await self.post_webhook(channel, webhook(channel.id, value))
        return wamid

    async def post_webhook(self, channel: Channel, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        response = await self.api.post(
            WEBHOOK, data=body, headers={"X-Hub-Signature-256": sign(body, channel.app_secret)}
        )
        assert response.status == 200, await response.text()

    async def conversation(
        self, channel: Channel, customer: str, headers: dict[str, str] = ADMIN
    ) -> Any:
        """The conversation as the API shows it (to the bootstrap admin by default); None
        while there is none."""
        status, body = await call(
            self.api, "GET", f"/v1/conversations/{channel.id}/{customer}", headers
        )
        return body if status == 200 else None

    async def act(
        self, channel: Channel, customer: str, method: str, suffix: str, body: Any
    ) -> Any:
        path = f"/v1/conversations/{channel.id}/{customer}{suffix}"
        status, answer = await call(self.api, method, path, ADMIN, body)
        assert status == 200, answer
        return answer


@contextlib.asynccontextmanager
async def running(kafka_bootstrap: str, redis_url: str, media: Path) -> AsyncIterator[Stack]:
    topic = f"parley-test-{uuid.uuid4().hex[:12]}"
    clients: list[Api] = []

    async def serve(app: web.Application) -> Api:
        client: Api = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    standin = StandIn(
        {channel.id: channel.access_token for channel in CHANNELS},
        app_secrets={channel.id: channel.app_secret for channel in CHANNELS},
        auto_statuses=("sent", "delivered", "read"),
    )
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
        graph = await serve(create_standin(standin))
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap,
            redis_url=redis_url,
            topic=topic,
            topic_partitions=4,
            consumer_group=f"{topic}-engine",
            produce_timeout_s=3.0,
            sweep_interval_s=0.2,
            graph_url=str(graph.make_url("/v21.0")),
            media_url=f"file://{media}",  # shared by the engine's fetcher and the API
        )
        await start_engine(serve, settings, CHANNELS)
        api = await start_api(serve, settings, CHANNELS)
        standin.webhook_url = str(api.make_url(WEBHOOK))
        tokens = await people(api)
        url = api.make_url("/")
        yield Stack(
            api=api,
            standin=standin,
            redis=redis,
            base=f"http://{url.host}:{url.port}",
            tokens=tokens,
        )
    finally:
        for client in reversed(clients):
            await client.close()
        await redis.aclose()


async def people(api: Api) -> dict[str, str]:
    """The users, their grants and the team; each user's token."""
    tokens = {}
    for user, name, admin in PEOPLE:
        status, made = await call(
            api, "POST", "/v1/users", ADMIN, {"id": user, "name": name, "admin": admin}
        )
        assert status == 201, made
        tokens[user] = made["token"]
    for channel, grants in GRANTS.items():
        for user, role in grants.items():
            path = f"/v1/channels/{channel.id}/access/users/{user}"
            status, body = await call(api, "PUT", path, ADMIN, {"role": role})
            assert status == 200, body
    team, team_name, members = TEAM
    status, body = await call(api, "POST", "/v1/teams", ADMIN, {"id": team, "name": team_name})
    assert status == 201, body
    for user in members:
        status, body = await call(api, "PUT", f"/v1/teams/{team}/members/{user}", ADMIN)
        assert status == 200, body
    path = f"/v1/channels/{SHOP.id}/access/teams/{team}"
    status, body = await call(api, "PUT", path, ADMIN, {"role": "contributor"})
    assert status == 200, body
    return tokens


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with running(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("media")) as started:
        yield started


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


# The browser


class Ui:
    """Inbox pages, each in a context of its own and watched: console errors, page
    errors, dialogs and CSP violations are collected and must be none."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.browser = browser
        self.base = base
        self.problems: list[str] = []
        self.requests: list[str] = []  # every URL an inbox page asked for
        self.posts: list[tuple[str, str]] = []  # (who, URL) of every POST a page made
        self.allowed: list[re.Pattern[str]] = []  # console errors a test provokes
        self.contexts: list[BrowserContext] = []
        self.pages: list[Page] = []

    async def context(self, viewport: ViewportSize = DESKTOP, **options: Any) -> BrowserContext:
        context = await self.browser.new_context(
            viewport=viewport, locale="en-GB", timezone_id="Europe/Lisbon", **options
        )
        await context.add_init_script(REPORT_VIOLATIONS)
        self.contexts.append(context)
        return context

    async def page(self, who: str, context: BrowserContext | None = None) -> Page:
        """The inbox page, loaded, in `context` (a new one by default)."""
        context = context or await self.context()
        page = await context.new_page()
        page.set_default_timeout(DEADLINE_MS)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error" and not any(p.search(message.text) for p in self.allowed):
                self.problems.append(f"{who}: console error: {message.text} {message.location}")

        async def on_dialog(dialog: Dialog) -> None:
            self.problems.append(f"{who}: a {dialog.type} dialog: {dialog.message}")
            await dialog.dismiss()

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"{who}: page error: {error}"))
        page.on("dialog", on_dialog)

        def on_request(request: Request) -> None:
            self.requests.append(request.url)
            if request.method == "POST":
                self.posts.append((who, request.url))

        page.on("request", on_request)
        self.pages.append(page)
        await page.goto(self.base + "/")
        return page

    async def sign_in(
        self,
        who: str,
        token: str,
        channel: Channel | None = None,
        context: BrowserContext | None = None,
    ) -> Page:
        """`who` signs in with their token (and picks `channel` in "Channel"); once the
        inbox is live."""
        page = await self.page(who, context)
        await page.get_by_role("textbox", name="Token", exact=True).fill(token)
        await page.get_by_role("button", name="Sign in", exact=True).click()
        await expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
        await expect(page.get_by_role("textbox", name="Token", exact=True)).to_have_count(0)
        await expect(page.locator(".live")).to_have_attribute("data-state", "live")
        if channel is not None:
            # By id: an earlier test may have renamed it.
            selector = page.get_by_role("combobox", name="Channel", exact=True)
            await selector.select_option(value=channel.id)
            await expect(selector).to_have_value(channel.id)
        return page

    def allow(self, console_error: str) -> None:
        """A console error the test provokes (Chromium logs every refused request)."""
        self.allowed.append(re.compile(console_error))

    async def assert_clean(self) -> None:
        """No console error, page error, dialog or CSP violation on any inbox page, and
        no inline style or event handler attribute in any of them."""
        for page in self.pages:
            if not page.is_closed():
                found = await page.evaluate(INLINE_MARKUP)
                assert found == [], f"inline markup on {page.url}: {found}"
        assert self.problems == []

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest.fixture
async def ui(chromium: Browser, stack: Stack) -> AsyncIterator[Ui]:
    pages = Ui(chromium, stack.base)
    try:
        yield pages
    finally:
        await pages.close()


def rows(page: Page, queue: str) -> Locator:
    """The conversation rows of the queue tab named `queue` (the tab panel is labelled
    by its tab)."""
    return page.get_by_role("tabpanel", name=queue, exact=True).get_by_role("button")


def conversation(page: Page) -> Locator:
    return page.get_by_role("region", name="Conversation", exact=True)


def messages(page: Page) -> Locator:
    return conversation(page).get_by_role("log", name="Messages", exact=True)


async def new_count(stack: Stack, channel: Channel) -> int:
    status, counts = await call(stack.api, "GET", f"/v1/channels/{channel.id}/queues", ADMIN)
    assert status == 200, counts
    return int(counts["new"])


async def session_cookie(context: BrowserContext) -> dict[str, Any]:
    [cookie] = [c for c in await context.cookies() if c["name"] == COOKIE]
    return dict(cookie)


async def eventually(
    read: Callable[[], Awaitable[Any]], check: Callable[[Any], bool], timeout_s: float = 10.0
) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await read()
        if check(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout_s}s; last: {value!r}")
        await asyncio.sleep(0.02)


async def reply_and_watch_ticks(page: Page, text: str) -> None:
    """Types `text` in "Reply", presses "Send", and waits (with a deadline) for its tick
    to go to read; the ticks seen on the way only ever move forward."""
    await page.evaluate(WATCH_TICKS, text)
    await page.get_by_role("textbox", name="Reply", exact=True).fill(text)
    await page.get_by_role("button", name="Send", exact=True).click()
    sent = messages(page).get_by_role("listitem").filter(has_text=text)
    await expect(sent).to_have_attribute("data-status", "read", timeout=DEADLINE_MS)
    tick = sent.get_by_title("Read", exact=True)
    await expect(tick).to_have_text("Read")
    seen: list[str] = await page.evaluate("(text) => window.__ticks[text]", text)
    assert seen[-1] == "read", seen
    positions = [TICKS.index(status) for status in seen]
    assert positions == sorted(positions), seen


# 1. An agent's day (must show 1)


async def test_an_agents_day_live_reply_roles_rename_and_sign_out(stack: Stack, ui: Ui) -> None:
    phone, name = "31612340001", "Jan de Vries"
    text = "Hi, I ordered a bike lock last Tuesday and it still has not shipped."
    answer = "Hello Jan, it left our warehouse this morning: you will have it tomorrow."

    agent = await ui.sign_in("agent", stack.tokens["maria.lopez"])
    new_tab = agent.get_by_role("tab", name="New", exact=True)
    await expect(new_tab).to_have_attribute("aria-selected", "true")
    for tab in ("Open", "Pending", "Resolved"):
        await expect(agent.get_by_role("tab", name=tab, exact=True)).to_be_visible()
    channel = agent.get_by_role("combobox", name="Channel", exact=True)
    await expect(channel.locator("option:checked")).to_have_text("Support EU")

    # A customer writes: the row is in New within a second, without a reload.
    await agent.evaluate("window.__sameDocument = true")
    await agent.evaluate(WATCH_ARRIVAL, name)
    await stack.webhook(DESK, phone, name, text)
    answered = time.time()
    row = rows(agent, "New").filter(has_text=name)
    await expect(row).to_be_visible(timeout=DEADLINE_MS)
    arrived_ms = await agent.evaluate("window.__arrivedAt")
    latency = arrived_ms / 1000 - answered
    assert latency < LIVE_WITHIN_S, f"in the list {latency:.3f}s after the webhook's answer"
    print(f"a customer's message was in New {latency * 1000:.0f} ms after the webhook's answer")
    assert await agent.evaluate("window.__sameDocument === true"), "the page was reloaded"
    await expect(row).to_contain_text(text)
    await expect(new_tab.locator(".count")).to_have_text(str(await new_count(stack, DESK)))

    # The agent opens it and replies; it moves to Open, assigned to them.
    await row.click()
    await expect(conversation(agent).get_by_role("heading", name=name, exact=True)).to_be_visible()
    await expect(messages(agent).get_by_role("listitem").filter(has_text=text)).to_be_visible()
    for action in ("Move to pending", "Resolve", "Assign"):
        await expect(agent.get_by_role("button", name=action, exact=True)).to_be_visible()
    await reply_and_watch_ticks(agent, answer)
    await expect(conversation(agent).get_by_text("Open · assigned to maria.lopez")).to_be_visible()
    await expect(rows(agent, "New").filter(has_text=name)).to_have_count(0)
    await agent.get_by_role("tab", name="Open", exact=True).click()
    await expect(rows(agent, "Open").filter(has_text=name)).to_contain_text("maria.lopez")
    view = await stack.conversation(DESK, phone, bearer(stack.tokens["maria.lopez"]))
    assert (view["queue"], view["assignee"]) == ("open", "maria.lopez")
    assert (view["messages"][-1]["text"], view["messages"][-1]["status"]) == (answer, "read")

    # A viewer reads it, and has no reply box.
    viewer = await ui.sign_in("viewer", stack.tokens["jonas.weber"], DESK)
    await viewer.get_by_role("tab", name="Open", exact=True).click()
    await rows(viewer, "Open").filter(has_text=name).click()
    await expect(messages(viewer).get_by_role("listitem").filter(has_text=answer)).to_be_visible()
    await expect(viewer.get_by_role("button", name="Resolve", exact=True)).to_be_visible()
    await expect(viewer.get_by_role("textbox", name="Reply", exact=True)).to_have_count(0)
    await expect(viewer.get_by_role("button", name="Send", exact=True)).to_have_count(0)
    await expect(viewer.get_by_role("button", name="Report", exact=True)).to_have_count(0)

    # A supervisor sees the report, its charts drawn as inline SVG with today's data.
    supervisor = await ui.sign_in("supervisor", stack.tokens["sam.okafor"])
    await supervisor.get_by_role("button", name="Report", exact=True).click()
    per_day = supervisor.get_by_role("img", name=re.compile(r"^Conversations per day\b"))
    await expect(per_day).to_be_visible()
    await expect(per_day).to_have_accessible_name(re.compile(r": [1-9]\d* opened, \d+ resolved\.$"))
    tallest = await per_day.locator("rect.bar").evaluate_all(
        "bars => Math.max(0, ...bars.map((bar) => Number(bar.getAttribute('height'))))"
    )
    assert tallest > 0, "the chart draws no bar"
    first_response = supervisor.get_by_role("img", name=re.compile(r"^First response time\b"))
    await expect(first_response).to_have_accessible_name(
        re.compile(r"from [1-9]\d* measured conversations\.$")
    )
    await expect(supervisor.locator("main svg.chart")).to_have_count(3)

    # An admin renames the channel; the selector shows the new name.
    admin = await ui.sign_in("admin", stack.tokens["olivia.hart"], DESK)
    selector = admin.get_by_role("combobox", name="Channel", exact=True)
    await admin.get_by_role("button", name="Admin", exact=True).click()
    await admin.get_by_role("textbox", name="Display name", exact=True).fill("Support Europe")
    await admin.get_by_role("button", name="Save settings", exact=True).click()
    await expect(selector.locator("option:checked")).to_have_text("Support Europe")
    status, saved = await call(stack.api, "GET", f"/v1/channels/{DESK.id}", ADMIN)
    assert (status, saved["display_name"]) == (200, "Support Europe")

    # Sign out ends the session: the sign-in form is back, the old cookie is refused.
    cookie = await session_cookie(agent.context)
    await agent.get_by_role("button", name="Sign out", exact=True).click()
    await expect(agent.get_by_role("textbox", name="Token", exact=True)).to_be_visible()
    await expect(agent.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    assert COOKIE not in {c["name"] for c in await agent.context.cookies()}
    replayed = await stack.api.get("/v1/me", headers={"Cookie": f"{COOKIE}={cookie['value']}"})
    assert replayed.status == 401
    await ui.assert_clean()


async def test_a_message_that_comes_while_the_list_loads_stays_in_it(stack: Stack, ui: Ui) -> None:
    """The list's first answer is read before the customer writes and lands after the
    stream brought their message: the row must survive the older answer."""
    phone, name = "31612340003", "Pieter Bakker"
    context = await ui.context()
    snapshot_taken, release = asyncio.Event(), asyncio.Event()

    async def hold(route: Route) -> None:
        response = await route.fetch()  # the list as it is now: without Pieter
        snapshot_taken.set()
        await release.wait()
        await route.fulfill(response=response)

    await context.route(re.compile(r"/v1/channels/[^/]+/conversations\?"), hold, times=1)
    agent = await ui.sign_in("agent", stack.tokens["maria.lopez"], context=context)
    await asyncio.wait_for(snapshot_taken.wait(), DEADLINE_MS / 1000)
    await stack.webhook(DESK, phone, name, "Is my order NW-1001 on its way?")
    row = rows(agent, "New").filter(has_text=name)
    await expect(row).to_be_visible()  # from the stream
    await row.evaluate("row => { row.dataset.mark = 'from the stream'; }")
    release.set()
    # The answer rendered the list again: the marked row is gone, a new one stands.
    await expect(agent.locator('[data-mark="from the stream"]')).to_have_count(0)
    await expect(row).to_be_visible()
    await expect(agent.get_by_role("tab", name="New", exact=True).locator(".count")).to_have_text(
        str(await new_count(stack, DESK))
    )
    await ui.assert_clean()


# 2. Security (must show 3)

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


class Markup(HTMLParser):
    """What a served HTML page holds that a strict CSP cares about."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_script = ""
        self.in_script = False
        self.forbidden: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, _ in attrs:
            if name == "style" or name.startswith("on"):
                self.forbidden.append(f"<{tag} {name}>")
        if tag == "style":
            self.forbidden.append("<style>")
        if tag == "script":
            self.scripts.append(dict(attrs))
            self.in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:
            self.inline_script += data.strip()


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


# What page scripts must never do: HTML from strings, code from strings, inline styles.
UNSAFE_SCRIPT = re.compile(
    r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write|\beval\s*\(|new Function\b"
    r"|setAttribute\(\s*[\"']style|\.style\.|\bstyle\s*:|import\s*\(?\s*[\"']https?:"
)


async def check_served(stack: Stack, path: str) -> None:
    """`path` carries the strict CSP; HTML has no inline script, handler or style; a
    script builds no HTML from strings and no inline style."""
    response = await stack.api.get(path)
    assert response.status == 200, path
    csp = response.headers.get("Content-Security-Policy")
    assert csp is not None, f"{path} has no Content-Security-Policy"
    directives = csp_directives(csp)
    assert directives["script-src"] == ["'self'"], (path, csp)
    assert directives["default-src"] == ["'none'"], (path, csp)
    # Customers' photos and voice notes come from /v1/media, and from nowhere else.
    assert directives["img-src"] == ["'self'", "data:"], (path, csp)
    assert directives["media-src"] == ["'self'"], (path, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, (path, csp)
    body = await response.text()
    kind = response.content_type
    if kind == "text/html":
        markup = Markup()
        markup.feed(body)
        assert markup.forbidden == [], (path, markup.forbidden)
        assert markup.inline_script == "", (path, markup.inline_script)
        assert all(script.get("src") for script in markup.scripts), (path, markup.scripts)
    elif kind == "text/javascript":
        assert UNSAFE_SCRIPT.search(body) is None, (path, UNSAFE_SCRIPT.search(body))
    elif kind == "text/css":
        assert "@import" not in body and "url(http" not in body, path


def attacker_app(target: str) -> web.Application:
    """Another origin's page: a form that posts JSON-looking text/plain to `target` (the
    classic CSRF shape), and a fetch that posts with credentials."""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Win a prize</title></head>
<body>
<form method="post" action="{target}" enctype="text/plain">
<input type="hidden" name='{{"text": "pwned by a form", "x": "' value='"}}'>
<button type="submit">Claim your prize</button>
</form>
</body></html>"""

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    return app


async def cross_site_posts(attacker: Page, origin: str, target: str) -> list[Any]:
    """From `origin`'s page, a fetch with credentials and a form post to `target`: the
    status of each (the API answers 401 when no session cookie came, 403 when one came
    without the CSRF token), and for the form, whether the cookie went along and the
    error's code."""
    await attacker.goto(origin + "/")
    async with attacker.expect_response(target) as fetched:
        await attacker.evaluate(
            """(target) => { fetch(target, {
                method: "POST", mode: "no-cors", credentials: "include",
                headers: { "Content-Type": "text/plain" },
                body: JSON.stringify({ text: "pwned by a fetch" }),
            }).catch(() => null); }""",
            target,
        )
    fetch_status = (await fetched.value).status  # opaque to the page, not to the browser
    async with attacker.expect_response(target) as posted:
        await attacker.get_by_role("button", name="Claim your prize", exact=True).click()
    response = await posted.value
    headers = await response.request.all_headers()
    code = (await response.json())["error"]["code"]
    return [fetch_status, response.status, COOKIE in headers.get("cookie", ""), code]


async def test_security_text_not_html_strict_csp_cookie_flags_and_no_cross_site_posts(
    stack: Stack, ui: Ui
) -> None:
    phone, name = "31612340002", "<b>Mallory</b> Evans"
    agent = await ui.sign_in("agent", stack.tokens["maria.lopez"])

    # A customer's HTML and script show as text; nothing of it becomes markup.
    await stack.webhook(DESK, phone, name, HOSTILE)
    row = rows(agent, "New").filter(has_text=name)
    await expect(row).to_contain_text(HOSTILE, timeout=DEADLINE_MS)
    await row.click()
    await expect(conversation(agent).get_by_role("heading", name=name, exact=True)).to_be_visible()
    message = messages(agent).get_by_role("listitem").filter(has_text=HOSTILE)
    await expect(message).to_be_visible()
    await expect(message.get_by_text(HOSTILE, exact=True)).to_be_visible()
    made = await agent.evaluate(
        """() => ({
            images: document.querySelectorAll("img").length,
            bold: document.querySelectorAll("main b").length,
            scripts: [...document.scripts].map((s) => [s.getAttribute("src"), s.text]),
        })"""
    )
    assert made == {"images": 0, "bold": 0, "scripts": [["/inbox/app.js", ""]]}

    # The CSP on the page and on everything it loads; nothing from elsewhere.
    loaded = sorted({url for url in ui.requests if not url.startswith(stack.base + "/v1/")})
    assert all(url.startswith(stack.base + "/") for url in ui.requests), ui.requests
    paths = [url.removeprefix(stack.base) for url in loaded]
    assert {"/", "/inbox/app.js", "/inbox/style.css", "/inbox/el.js"} <= set(paths), paths
    shipped = {f"/inbox/{file.name}" for file in STATIC.iterdir() if file.name != "index.html"}
    for path in sorted({*paths, *shipped}):
        await check_served(stack, path)
    missing = await stack.api.get("/inbox/nothing-here.js")
    assert missing.status == 404 and "Content-Security-Policy" in missing.headers

    # The session cookie: HttpOnly, SameSite=Strict, out of page scripts' reach; the
    # token is kept nowhere a script could read it.
    cookie = await session_cookie(agent.context)
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict"), cookie
    readable = await agent.evaluate(
        "() => [document.cookie, JSON.stringify({...localStorage}), JSON.stringify({...sessionStorage}), document.documentElement.outerHTML]"
    )
    for place in readable:
        assert COOKIE not in place and cookie["value"] not in place
        assert stack.tokens["maria.lopez"] not in place

    # Cross-site posts: another origin on this site (the cookie goes along, the CSRF
    # check refuses) and another site (the cookie stays home): nothing is produced.
    target = f"{stack.base}/v1/conversations/{DESK.id}/{phone}/replies"
    server = TestServer(attacker_app(target))
    await server.start_server()
    try:
        attacker = await agent.context.new_page()
        same_site = await cross_site_posts(attacker, f"http://127.0.0.1:{server.port}", target)
        other_site = await cross_site_posts(attacker, f"http://localhost:{server.port}", target)
    finally:
        await server.close()
    assert same_site == [403, 403, True, "csrf_failed"], same_site
    assert other_site == [401, 401, False, "unauthorized"], other_site
    marker = await stack.act(DESK, phone, "POST", "/tags", {"tag": "checked"})
    assert marker["outcome"] == "applied"  # after the refused posts, in order
    view = await stack.conversation(DESK, phone)
    assert "checked" in view["tags"]
    assert [m["direction"] for m in view["messages"]] == ["inbound"], view["messages"]
    assert not any("pwned" in json.dumps(sent.body) for sent in stack.standin.sent)

    # After sign out the cookie is dead, even with its CSRF token.
    headers = {"Cookie": f"{COOKIE}={cookie['value']}"}
    status, session = await call(stack.api, "GET", "/v1/session", headers)
    assert status == 200
    await agent.get_by_role("button", name="Sign out", exact=True).click()
    await expect(agent.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    assert (await stack.api.get("/v1/me", headers=headers)).status == 401
    assert (await stack.api.get("/v1/session", headers=headers)).status == 401
    forged = {**headers, "X-CSRF-Token": session["csrf"], "Origin": stack.base}
    replayed = await stack.api.post(
        target.removeprefix(stack.base), json={"text": "late"}, headers=forged
    )
    assert replayed.status == 401
    await ui.assert_clean()


# 3. Screenshots (must show 5)

DAY_S = 86400
# Earlier days of the Northwind channel, for the report: who wrote what; each day's
# conversations open from 08:00 UTC on, get a first reply after FIRST_REPLY_MIN and
# are resolved after RESOLVED_AFTER_H (taken in turn).
EARLIER = [
    ("Lena Fischer", "Is the 40 l trekking backpack waterproof or only water-resistant?"),
    ("Pedro Alves", "My discount code did not apply at checkout."),
    ("Marta Nowak", "Can I return boots I wore once indoors?"),
    ("Oliver Grant", "Where can I find the size chart for the rain jackets?"),
    ("Ines Duarte", "The tent arrived without its repair kit."),
    ("Youssef Amrani", "Do you ship to Morocco?"),
    ("Clara Weiss", "Please cancel order NW-47120, I ordered twice by mistake."),
    ("Noah Jensen", "The zip on my fleece broke after two weeks."),
    ("Elena Russo", "Is there a student discount?"),
    ("Samuel Ortiz", "How long do refunds take to reach my card?"),
]
PER_DAY = [3, 5, 4, 6, 2, 5]  # six days ago .. yesterday
FIRST_REPLY_MIN = [4, 11, 7, 23, 3, 15, 9, 38, 6, 12]
RESOLVED_AFTER_H = [1.5, 3, 0.7, 6, 2.2, 9, 1.1, 4.5, 20, 2.8]

# Today's customers, and what they wrote how many minutes ago (oldest first).
SOFIA = ("351912345678", "Sofia Marques")
AISHA = ("2348031234567", "Aisha Bello")
DANIEL = ("48601234567", "Daniel Kowalski")
CHLOE = ("33612345678", "Chloé Martin")
EMMA = ("46701234567", "Emma Johansson")
LUCAS = ("5511987654321", "Lucas Ferreira")
HIROSHI = ("819012345678", "Hiroshi Tanaka")
MATEO = ("4915112345678", "Mateo Rossi")  # open, with Tom
GRACE = ("447700900123", "Grace Liu")  # pending, Ana's
TODAY = [
    (GRACE, 160, "Thanks! I will send the photos of the damaged parcel tonight."),
    (MATEO, 95, "I was charged twice for order NW-48190, please help."),
    (AISHA, 71, "Hello, I received the Ridge hiking boots in size 41 but ordered a 42."),
    (AISHA, 69, "How do I exchange them? I still have the box and the receipt."),
    (DANIEL, 48, "Do you ship to Poland? Checkout only offers Germany and Austria."),
    (CHLOE, 37, "Bonjour! Is there a shop in Lyon where I can try the boots?"),
    (SOFIA, 26, "Hi! Order NW-48213 was due yesterday; tracking has not moved since Monday."),
    (SOFIA, 25, "Could you check with the carrier? It is a birthday present."),
    (EMMA, 19, "Can I change the address on order NW-48377? I move on Friday."),
    (LUCAS, 9, "Will the Storm Shell jacket in navy be back in stock soon?"),
    (HIROSHI, 3, "The code WELCOME10 says it has expired, but I signed up today."),
]
CUSTOMERS = list(dict.fromkeys(customer for customer, _, _ in TODAY))
SAVED_REPLIES = {
    "Greeting": "Hi! Thanks for writing to Northwind Outfitters, how can we help?",
    "Returns": "You can return unworn items within 30 days: northwind.example/returns",
    "Shipping times": "We ship within 1 working day; delivery in the EU takes 2 to 4 days.",
}


def seeded(
    phone: str, payload: Payload, at: float, name: str | None = None, event_id: str | None = None
) -> Event:
    return Event(
        id=event_id or uuid.uuid4().hex,
        channel=SHOP.id,
        identity=Identity(phone=phone, name=name),
        occurred_at=at,
        received_at=at,
        payload=payload,
    )


async def seed_earlier_days(redis: Redis) -> None:
    """Six days of resolved conversations on SHOP, applied by the engine's own Applier
    at their times, so the report's counters are what the engine writes."""
    store = ConversationStore(redis)
    await store.start()
    today = int(time.time() // DAY_S) * DAY_S
    person = 0
    for days_ago, count in zip(range(6, 0, -1), PER_DAY, strict=True):
        for n in range(count):
            name, text = EARLIER[person % len(EARLIER)]
            agent = Actor(["ana.silva", "tom.becker"][person % 2], Role.CONTRIBUTOR)
            first_reply = FIRST_REPLY_MIN[(person + days_ago) % 10] * 60
            resolved = RESOLVED_AFTER_H[(person * 3 + days_ago) % 10] * 3600
            phone = f"3519{days_ago:02d}{n:02d}{person:05d}"
            opened = today - days_ago * DAY_S + 8 * 3600 + n * 47 * 60
            wamid = f"wamid.{uuid.uuid4().hex}"
            message = CustomerMessage(wamid=wamid, type="text", text=text)
            events = [
                seeded(phone, message, opened, name, event_id=wamid),
                seeded(
                    phone,
                    AgentReply(actor=agent, text="Let me check that for you."),
                    opened + first_reply,
                ),
                seeded(phone, Move(actor=agent, queue="resolved"), opened + resolved),
            ]
            for event in events:
                [applied] = await Applier(store, Clock(event.occurred_at)).apply([event])
                assert applied.outcome is Outcome.APPLIED, applied
            person += 1


async def seed_today(stack: Stack) -> None:
    """Today's customers write (signed webhooks dated minutes ago); Mateo's is open with
    Tom, Grace's waits in Pending; the channel has saved replies."""
    for (phone, name), minutes, text in TODAY:
        await stack.webhook(SHOP, phone, name, text, ago_s=minutes * 60)
    for (phone, _), count in Counter(who for who, _, _ in TODAY).items():

        def written(view: Any, count: int = count) -> bool:
            return view is not None and len(view["messages"]) == count

        await eventually(functools.partial(stack.conversation, SHOP, phone), written)
    mateo, grace = MATEO[0], GRACE[0]
    await stack.act(SHOP, mateo, "PUT", "/assignee", {"user": "tom.becker"})
    await stack.act(
        SHOP,
        mateo,
        "POST",
        "/notes",
        {"text": "Refund of the duplicate charge requested from the payments team."},
    )
    await stack.act(SHOP, grace, "PUT", "/assignee", {"user": "ana.silva"})
    await stack.act(SHOP, grace, "POST", "/move", {"queue": "pending"})
    for title, text in SAVED_REPLIES.items():
        status, body = await call(
            stack.api, "PUT", f"/v1/channels/{SHOP.id}/saved-replies/{title}", ADMIN, {"text": text}
        )
        assert status == 200, body


async def shoot(page: Page, name: str, *, whole: bool = False) -> None:
    """A PNG of the page in docs/screenshots/; `whole` grows the viewport (same width)
    to the main area's full height first, since only that area scrolls."""
    if whole:
        size = page.viewport_size
        assert size is not None
        height = await page.evaluate(
            "() => { const main = document.querySelector('main'); return Math.ceil(main.getBoundingClientRect().top + main.scrollHeight); }"
        )
        await page.set_viewport_size({"width": size["width"], "height": max(800, height)})
    await page.mouse.move(0, 0)  # no hover highlight in the picture
    await page.evaluate("() => document.activeElement?.blur()")  # and no focus ring
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SHOTS / name, animations="disabled", caret="initial")


async def test_screenshots_of_the_inbox_a_conversation_the_report_and_admin(
    stack: Stack, ui: Ui
) -> None:
    await seed_earlier_days(stack.redis)
    await seed_today(stack)
    sofia_phone, sofia = SOFIA
    aisha = AISHA[1]

    # The inbox: New, oldest first, with Aisha's conversation open.
    agent = await ui.sign_in("agent", stack.tokens["ana.silva"])
    await expect(rows(agent, "New")).to_have_count(7)
    await rows(agent, "New").filter(has_text=aisha).click()
    await expect(messages(agent).get_by_role("listitem")).to_have_count(2)
    await shoot(agent, "inbox.png")

    # A conversation: both ways with read ticks, a tag, a topic and a note.
    await rows(agent, "New").filter(has_text=sofia).click()
    await expect(messages(agent).get_by_role("listitem")).to_have_count(2)
    await reply_and_watch_ticks(
        agent, "Hi Sofia, sorry about that! I am checking with DHL right now."
    )
    await stack.webhook(
        SHOP, sofia_phone, sofia, "Thank you! Will it still arrive before Saturday?"
    )
    await expect(messages(agent).get_by_role("listitem")).to_have_count(4)
    await reply_and_watch_ticks(
        agent,
        "Good news: DHL has it on today's van to Porto. You will get a text with a two-hour delivery window.",
    )
    details = agent.get_by_role("complementary", name=f"Details of {sofia}", exact=True)
    for label, button, value in [
        ("Tag", "Add tag", "delivery-delay"),
        ("Tag", "Add tag", "gift"),
        ("Topic", "Add topic", "Shipping"),
        (
            "Note",
            "Add note",
            "DHL confirmed a scan gap at the Madrid hub; parcel is on today's route.",
        ),
    ]:
        await details.get_by_role("textbox", name=label, exact=True).fill(value)
        await details.get_by_role("button", name=button, exact=True).click()
        await expect(details.get_by_role("listitem").filter(has_text=value)).to_be_visible()
    await agent.get_by_role("tab", name="Open", exact=True).click()
    await expect(rows(agent, "Open")).to_have_count(2)
    await shoot(agent, "conversation.png")

    # The report: six earlier days and today, as a supervisor sees it.
    supervisor = await ui.sign_in("supervisor", stack.tokens["priya.nair"], SHOP)
    await supervisor.get_by_role("button", name="Report", exact=True).click()
    per_day = supervisor.get_by_role("img", name=re.compile(r"^Conversations per day\b"))
    total = sum(PER_DAY) + len(CUSTOMERS)
    await expect(per_day).to_have_accessible_name(
        re.compile(rf": {total} opened, {sum(PER_DAY)} resolved\.$")
    )
    await expect(supervisor.locator("main svg.chart")).to_have_count(3)
    await shoot(supervisor, "report.png", whole=True)

    # Admin: the channel's settings, saved replies, grants, users and teams.
    admin = await ui.sign_in("admin", stack.tokens["olivia.hart"], SHOP)
    await admin.get_by_role("button", name="Admin", exact=True).click()
    await expect(
        admin.get_by_role("combobox", name="Role of priya.nair", exact=True)
    ).to_have_value("supervisor")
    await expect(
        admin.get_by_role("button", name="New token for priya.nair", exact=True)
    ).to_be_visible()
    await expect(
        admin.get_by_role("button", name="Remove saved reply Returns", exact=True)
    ).to_be_visible()
    await expect(
        admin.get_by_role("button", name="Remove tom.becker from care-eu", exact=True)
    ).to_be_visible()
    await shoot(admin, "admin.png", whole=True)

    # The inbox at a phone's width: one column, the list.
    phone = await ui.sign_in(
        "agent on a phone",
        stack.tokens["ana.silva"],
        context=await ui.context(PHONE, is_mobile=True, has_touch=True),
    )
    await expect(rows(phone, "New")).to_have_count(6)
    await expect(conversation(phone)).to_be_hidden()  # one column: the list
    await shoot(phone, "inbox-phone.png")
    await ui.assert_clean()
    for name in ("inbox", "conversation", "report", "admin", "inbox-phone"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000


# 4. Rich messaging (issue 13): files, places, cards, quotes, reactions, templates


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """An RGB PNG of `pixel(x, y)`."""
    raw = b"".join(
        b"\x00" + bytes(value for x in range(width) for value in pixel(x, y)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def parcel(x: int, y: int) -> tuple[int, int, int]:
    """A photo, of sorts: a taped cardboard box with a crushed corner, on a table."""
    background = (214 - y // 6, 220 - y // 8, 228 - y // 10)
    left, top, right, bottom, dent = 60, 50, 260, 200, 55
    if not (left <= x < right and top <= y < bottom) or x - (right - dent) > y - top:
        return background
    if abs((x - (right - dent)) - (y - top)) < 3:
        return (120, 84, 48)  # the crease where the corner gave way
    if x < left + 3 or x >= right - 3 or y < top + 3 or y >= bottom - 3:
        return (140, 100, 60)
    if 150 <= x < 172:
        return (226, 206, 160)  # tape
    return (196, 152, 100)


def pdf(text: str) -> bytes:
    """A one-page PDF that says `text` (ASCII)."""
    content = f"BT /F1 18 Tf 24 60 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 320 144] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


PHOTO = png(320, 240, parcel)
FETCH_DELAY_S = 2.5  # longer than it takes to open the conversation
VOICE = b"OggS" + bytes(400)  # the player need not play it: the page shows one


def media_message(
    stack: Stack,
    kind: str,
    data: bytes,
    mime_type: str,
    *,
    caption: str | None = None,
    filename: str | None = None,
    voice: bool = False,
    media_id: str | None = None,
) -> dict[str, Any]:
    """A customer's file message (`kind`: image, document, audio...) whose media the
    stand-in has, as Meta has it before the webhook; the engine fetches it."""
    media_id = media_id or str(10**15 + uuid.uuid4().int % (9 * 10**15))
    stored = stack.standin.seed_media(media_id, data, mime_type)
    body: dict[str, Any] = {"id": media_id, "mime_type": mime_type, "sha256": stored.sha256}
    if caption is not None:
        body["caption"] = caption
    if filename is not None:
        body["filename"] = filename
    if voice:
        body["voice"] = True
    return {"type": kind, kind: body}


def items(page: Page) -> Locator:
    """The messages of the open conversation (not the lists inside them)."""
    return messages(page).locator(":scope > li")


# The roles of controls and images: each must have a name in the accessibility tree.
NAMED_ROLES = (
    "button",
    "link",
    "textbox",
    "combobox",
    "checkbox",
    "img",
    "group",
    "progressbar",
    "listbox",
    "slider",
)
NAMELESS = re.compile(rf"^\s*- ({'|'.join(NAMED_ROLES)})( \[[^\]]*\])*:?$")


async def assert_named(region: Locator) -> None:
    """Every control and image in `region`'s accessibility tree (Playwright's ARIA
    snapshot: `- button "Send"`) has an accessible name."""
    snapshot = await region.aria_snapshot()
    nameless = [line.strip() for line in snapshot.splitlines() if NAMELESS.match(line)]
    assert nameless == [], snapshot


async def marked_read(stack: Stack) -> list[str]:
    """The wamids the stand-in was asked to mark read, in order."""
    return [receipt.message_id for receipt in stack.standin.reads]


def sent_to(stack: Stack, phone: str, kind: str) -> list[dict[str, Any]]:
    """The bodies of the messages of `kind` the stand-in accepted for `phone`."""
    return [sent.body for sent in stack.standin.sent if sent.to == phone and sent.type == kind]


async def test_a_customers_photo_document_voice_note_place_and_card_show_as_such(
    stack: Stack, ui: Ui
) -> None:
    phone, name = "4915790001234", "Lena Vogel"
    receipt = pdf("Receipt NW-1013")
    agent = await ui.sign_in("agent", stack.tokens["maria.lopez"])
    lost = {"id": "999000111222333", "mime_type": "image/jpeg", "sha256": "unknown"}
    await stack.customer_sends(DESK, phone, name, {"type": "image", "image": lost})
    slow = "1000200030004000"  # the photo's media id: Meta takes its time to look it up
    stack.standin.fail_next(slow, Fault(status=200, delay_s=FETCH_DELAY_S))
    photo = "The box arrived crushed"
    for content in [
        media_message(stack, "image", PHOTO, "image/png", caption=photo, media_id=slow),
        media_message(
            stack,
            "document",
            receipt,
            "application/pdf",
            caption="My receipt",
            filename="receipt-1013.pdf",
        ),
        media_message(stack, "audio", VOICE, "audio/ogg; codecs=opus", voice=True),
        {
            "type": "contacts",
            "contacts": [
                {
                    "name": {"formatted_name": "Barbara Johnson", "first_name": "Barbara"},
                    "phones": [{"phone": "+1 (940) 555-1234", "wa_id": "19405551234"}],
                }
            ],
        },
        {
            "type": "location",
            "location": {
                "latitude": 38.7106732,
                "longitude": -9.1420553,
                "name": "Northwind Chiado",
                "address": "Rua Garrett 12, Lisboa",
            },
        },
    ]:
        last = await stack.customer_sends(DESK, phone, name, content)

    # The list shows the last message's preview, from the stream.
    row = rows(agent, "New").filter(has_text=name)
    await expect(row).to_contain_text("Location: Northwind Chiado, Rua Garrett 12, Lisboa")
    customer = await row.get_attribute("data-customer")
    await row.click()
    log = messages(agent)
    await expect(items(agent)).to_have_count(6)

    # The photo: a placeholder while the engine fetches it, then inline (served by
    # /v1/media with the session's cookie), without a reload.
    await expect(item_with(agent, photo)).to_contain_text("Photo: being fetched from WhatsApp…")
    image = log.get_by_role("img", name=photo, exact=True)
    await expect(image).to_be_visible()
    assert await image.evaluate("img => img.decode().then(() => img.naturalWidth)") == 320
    await expect(log.get_by_text(photo, exact=True)).to_be_visible()
    # The document as a download with its name and size; the caption as text.
    document = log.get_by_role("link", name=f"Download receipt-1013.pdf ({len(receipt)} bytes)")
    await expect(document).to_be_visible()
    async with agent.expect_download() as downloading:
        await document.click()
    download = await downloading.value
    assert download.suggested_filename == "receipt-1013.pdf"
    assert await asyncio.to_thread(Path(await download.path()).read_bytes) == receipt
    await expect(log.get_by_text("My receipt", exact=True)).to_be_visible()
    # The voice note plays in the page; the image Meta did not have says why.
    voice = log.locator("audio")
    await expect(voice).to_have_accessible_name("Voice message")
    await expect(voice).to_have_attribute("src", re.compile(r"^/v1/media/"))
    await expect(log.get_by_text(re.compile(r"^Photo could not be fetched: \S"))).to_be_visible()
    # The card with its phone; the place with its address and coordinates, no map.
    card = log.get_by_role("list", name="Shared contact", exact=True)
    await expect(card).to_contain_text("Barbara Johnson")
    await expect(card.get_by_role("list", name="Phones")).to_have_text("+1 (940) 555-1234")
    place = items(agent).last
    await expect(place).to_contain_text("Northwind Chiado")
    await expect(place).to_contain_text("Rua Garrett 12, Lisboa")
    await expect(place).to_contain_text("38.71067° N, 9.14206° W")

    # Opening it marked the customer's last message read, once.
    await eventually(lambda: marked_read(stack), lambda read: last in read)
    reads = [url for _, url in ui.posts if url.endswith("/read")]
    assert reads == [f"{stack.base}/v1/conversations/{DESK.id}/{customer}/read"], reads

    # An agent's reply buttons show as such (not as buttons of this page).
    choices = {
        "interactive": {
            "body": "What would you like us to do?",
            "buttons": [
                {"id": "refund", "title": "A refund"},
                {"id": "swap", "title": "A new box"},
            ],
        }
    }
    await stack.act(DESK, phone, "POST", "/replies", choices)
    offered = log.get_by_role("list", name="Reply buttons", exact=True)
    await expect(offered.get_by_role("listitem")).to_have_text(["A refund", "A new box"])
    await expect(items(agent).last.get_by_role("button", name="A refund")).to_have_count(0)
    await assert_named(conversation(agent))

    # A viewer sees it all, marks nothing read and has no message actions.
    viewer = await ui.sign_in("viewer", stack.tokens["jonas.weber"], DESK)
    await viewer.get_by_role("tab", name="Open", exact=True).click()  # the reply opened it
    await rows(viewer, "Open").filter(has_text=name).click()
    await expect(
        messages(viewer).get_by_role("img", name="The box arrived crushed")
    ).to_be_visible()
    await expect(messages(viewer).get_by_role("button", name="Reply", exact=True)).to_have_count(0)
    await expect(messages(viewer).get_by_role("button", name="React", exact=True)).to_have_count(0)
    assert [url for who, url in ui.posts if who == "viewer" and "/conversations/" in url] == []
    await ui.assert_clean()


async def test_captions_and_file_names_from_customers_stay_text(stack: Stack, ui: Ui) -> None:
    phone, name = "31612340009", "Mallory Evans"
    hostile_file = "<img src=x onerror=alert(3)>.pdf"
    agent = await ui.sign_in("agent", stack.tokens["maria.lopez"])
    red = png(40, 30, lambda x, y: (200, 40, 40))
    await stack.customer_sends(
        DESK, phone, name, media_message(stack, "image", red, "image/png", caption=HOSTILE)
    )
    document = media_message(
        stack, "document", pdf("x"), "application/pdf", caption=HOSTILE, filename=hostile_file
    )
    await stack.customer_sends(DESK, phone, name, document)
    await rows(agent, "New").filter(has_text=name).click()
    log = messages(agent)
    # The caption is the photo's alt text and a paragraph, the file name a link's text.
    await expect(log.get_by_role("img", name=HOSTILE, exact=True)).to_be_visible()
    await expect(log.get_by_text(HOSTILE, exact=True)).to_have_count(2)
    link = log.get_by_role("link", name=re.compile("^Download " + re.escape(hostile_file)))
    await expect(link).to_be_visible()
    made = await agent.evaluate(
        """() => ({
            images: [...document.querySelectorAll("img")].map((img) => img.getAttribute("alt")),
            scripts: [...document.scripts].map((s) => [s.getAttribute("src"), s.text]),
        })"""
    )
    assert made == {"images": [HOSTILE], "scripts": [["/inbox/app.js", ""]]}
    await ui.assert_clean()  # no dialog, no handler attribute anywhere


def item_with(page: Page, text: str) -> Locator:
    return items(page).filter(has_text=text)


async def choose_file(page: Page, button: str, name: str, mime_type: str, data: bytes) -> None:
    """Presses `button` and picks a file in the browser's file chooser it opens."""
    async with page.expect_file_chooser() as chooser:
        await page.get_by_role("button", name=button, exact=True).click()
    await (await chooser.value).set_files({"name": name, "mimeType": mime_type, "buffer": data})


async def test_an_agent_reacts_quotes_a_message_and_sends_a_file_with_a_caption(
    stack: Stack, ui: Ui
) -> None:
    phone, name = "351934567890", "Inês Costa"
    caption = "This is how the box arrived"
    question = "One boot has a scuffed toe. Can I get a new pair?"
    answer = "I am so sorry, Inês! A new pair leaves today; the old one goes back for free."
    label_caption = "Your prepaid return label: print it and stick it on the box."
    label = pdf("Northwind return label NW-48213")
    photo_wamid = await stack.customer_sends(
        SHOP, phone, name, media_message(stack, "image", PHOTO, "image/png", caption=caption), 300
    )
    question_wamid = await stack.webhook(SHOP, phone, name, question, ago_s=240)
    context = await ui.context()
    agent = await ui.sign_in("agent", stack.tokens["ana.silva"], SHOP, context=context)
    await rows(agent, "New").filter(has_text=name).click()
    photo = item_with(agent, caption)
    await expect(photo.get_by_role("img", name=caption, exact=True)).to_be_visible()

    # React with a thumbs up, take it back (pressed again), then with folded hands.
    react = photo.get_by_role("button", name="React", exact=True)
    reactions = photo.get_by_role("group", name="Reactions", exact=True)
    thumbs = reactions.get_by_role("button", name="Thumbs up", exact=True)
    await react.click()
    await expect(react).to_have_attribute("aria-expanded", "true")
    await expect(thumbs).to_be_focused()
    await assert_named(conversation(agent))  # the emoji too, while they show
    await agent.keyboard.press("Escape")
    await expect(reactions).to_be_hidden()
    await expect(react).to_be_focused()
    for name_of in ["Thumbs up", "Thumbs up", "Folded hands"]:
        await react.click()
        await reactions.get_by_role("button", name=name_of, exact=True).click()
        await expect(reactions).to_be_hidden()
    ours = photo.get_by_title("Our reaction", exact=True)
    await expect(ours).to_have_text("Our reaction: 🙏")
    await react.click()
    await expect(reactions.get_by_role("button", name="Folded hands")).to_have_attribute(
        "aria-pressed", "true"
    )
    await agent.keyboard.press("Escape")
    await eventually(
        lambda: asyncio.sleep(0, sent_to(stack, phone, "reaction")),
        lambda sent: len(sent) == 3,
    )
    assert [body["reaction"] for body in sent_to(stack, phone, "reaction")] == [
        {"message_id": photo_wamid, "emoji": "👍"},
        {"message_id": photo_wamid, "emoji": ""},
        {"message_id": photo_wamid, "emoji": "🙏"},
    ]

    # Reply to the question: it is quoted in the composer, then above the reply.
    await item_with(agent, question).get_by_role("button", name="Reply", exact=True).click()
    composer = conversation(agent).locator("form.composer")
    await expect(
        composer.get_by_role("status").filter(has_text="Replying to the customer")
    ).to_contain_text(question)
    box = agent.get_by_role("textbox", name="Reply", exact=True)
    await expect(box).to_be_focused()
    await box.press_sequentially("I am so sorry")  # typing: one indicator for it all
    await box.fill(answer)
    await agent.get_by_role("button", name="Send", exact=True).click()
    sent = item_with(agent, answer)
    quote = sent.get_by_role("button", name=re.compile("^Replying to the customer"))
    await expect(quote).to_contain_text(question)
    await expect(agent.get_by_role("button", name="Cancel reply", exact=True)).to_be_hidden()
    await quote.click()
    await expect(item_with(agent, question).first).to_be_focused()  # the quoted message
    [text] = await eventually(
        lambda: asyncio.sleep(0, sent_to(stack, phone, "text")), lambda found: len(found) == 1
    )
    assert text["text"]["body"] == answer and text["context"] == {"message_id": question_wamid}

    # A file WhatsApp would refuse: the API's reason shows, nothing is sent.
    ui.allow(r"the server responded with a status of 422 \(Unprocessable Entity\)$")
    await choose_file(
        agent, "Attach file", "boots.zip", "application/zip", b"PK\x03\x04" + bytes(64)
    )
    refusal = composer.get_by_role("alert").filter(has_text="boots.zip was not uploaded")
    await expect(refusal).to_contain_text("application/pdf")  # the types WhatsApp takes
    ui.allow(r"the server responded with a status of 413 \(Request Entity Too Large\)$")
    big = b"\x89PNG\r\n\x1a\n" + bytes(6 * 1024 * 1024)
    await choose_file(agent, "Attach file", "huge.png", "image/png", big)
    too_big = composer.get_by_role("alert").filter(has_text="huge.png was not uploaded")
    await expect(too_big).to_contain_text("may be at most")
    # The return label, held a moment on its way so that its progress shows.
    held = asyncio.Event()

    async def hold(route: Route) -> None:
        await held.wait()
        await route.continue_()

    await context.route(re.compile(r"/uploads\?"), hold, times=1)
    await choose_file(agent, "Attach file", "return-label-NW-48213.pdf", "application/pdf", label)
    await expect(
        agent.get_by_role("progressbar", name="Attach file: upload progress")
    ).to_be_visible()
    await expect(agent.get_by_role("button", name="Cancel upload", exact=True)).to_be_visible()
    await expect(refusal).to_have_count(0)
    held.set()
    ready = composer.get_by_role("status").filter(has_text="ready to send")
    await expect(ready).to_have_text(
        f"return-label-NW-48213.pdf · {len(label)} bytes · ready to send"
    )
    await expect(agent.get_by_role("button", name="Remove attachment", exact=True)).to_be_visible()
    await box.fill(label_caption)
    await agent.get_by_role("button", name="Send", exact=True).click()
    with_label = item_with(agent, label_caption)
    await expect(
        with_label.get_by_role("link", name=re.compile(r"^Download return-label-NW-48213\.pdf\b"))
    ).to_be_visible()
    await expect(ready).to_have_count(0)
    await expect(box).to_have_value("")
    [document] = await eventually(
        lambda: asyncio.sleep(0, sent_to(stack, phone, "document")), lambda found: len(found) == 1
    )
    assert document["document"]["caption"] == label_caption
    assert document["document"]["filename"] == "return-label-NW-48213.pdf"
    assert stack.standin.media[document["document"]["id"]].data == label

    # Typing showed the customer an indicator once (at most one per 20 s), and opening
    # the conversation marked their last message read once.
    posted = [
        url.rsplit("/", 1)[1]
        for who, url in ui.posts
        if who == "agent" and "/conversations/" in url
    ]
    assert posted.count("typing") == 1 and posted.count("read") == 1, posted
    assert question_wamid in await marked_read(stack)

    # The customer answers with where the courier can collect it.
    await stack.customer_sends(
        SHOP,
        phone,
        name,
        {
            "type": "location",
            "location": {
                "latitude": 41.1496,
                "longitude": -8.6109,
                "name": "Casa Costa",
                "address": "Rua de Santa Catarina 112, Porto",
            },
        },
    )
    await expect(item_with(agent, "Casa Costa")).to_contain_text("41.14960° N, 8.61090° W")
    await assert_named(conversation(agent))
    await ui.assert_clean()
    await agent.get_by_role("tab", name="Open", exact=True).click()
    await expect(rows(agent, "Open").filter(has_text=name)).to_be_visible()
    await agent.set_viewport_size({"width": 1280, "height": 1080})  # the whole thread
    await messages(agent).evaluate("log => { log.scrollTop = log.scrollHeight; }")
    await shoot(agent, "rich-conversation.png")
    assert (SHOTS / "rich-conversation.png").stat().st_size > 10_000


ORDER_SHIPPED = {
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}} is on its way"},
        {
            "type": "BODY",
            "text": "Hi {{1}}, your parcel left our warehouse today and should reach you by {{2}}.",
        },
        {"type": "FOOTER", "text": "Northwind Outfitters"},
        {
            "type": "BUTTONS",
            "buttons": [
                {
                    "type": "URL",
                    "text": "Track parcel",
                    "url": "https://northwind.example/track/{{1}}",
                },
                {"type": "QUICK_REPLY", "text": "Change delivery"},
            ],
        },
    ],
}
RETURN_LABEL = {
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "DOCUMENT"},
        {"type": "BODY", "text": "Hi {{1}}, here is the return label you asked for."},
    ],
}


async def test_a_template_with_variables_is_filled_in_and_reaches_whatsapp(
    stack: Stack, ui: Ui
) -> None:
    phone, name = "4670123456701", "Jonas Berg"
    for registered, definition in [
        ("order_shipped", ORDER_SHIPPED),
        ("return_label", RETURN_LABEL),
    ]:
        path = f"/v1/channels/{SHOP.id}/templates/{registered}/en_US"
        status, body = await call(stack.api, "PUT", path, ADMIN, definition)
        assert status == 200, body
    await stack.webhook(SHOP, phone, name, "Has order NW-48377 shipped yet?", ago_s=26 * 3600)
    agent = await ui.sign_in("agent", stack.tokens["ana.silva"], SHOP)
    await rows(agent, "New").filter(has_text=name).click()
    # A day later only a template may go: the picker shows, with the template's inputs.
    await expect(conversation(agent).get_by_text(re.compile("more than 24 hours"))).to_be_visible()
    template = agent.get_by_role("combobox", name="Template", exact=True)
    await template.select_option(label="order_shipped (en_US) · utility")
    header = agent.get_by_role("textbox", name="Header variable", exact=True)
    first = agent.get_by_role("textbox", name="Body variable 1", exact=True)
    second = agent.get_by_role("textbox", name="Body variable 2", exact=True)
    link = agent.get_by_role("textbox", name="Link of button “Track parcel”", exact=True)
    await expect(link).to_have_accessible_description(
        "Fills in https://northwind.example/track/{{1}}"
    )
    await header.fill("NW-48377")
    await first.fill("Jonas")
    await link.fill("NW-48377")
    # A variable left empty: nothing is sent, and the page says which.
    send = agent.get_by_role("button", name="Send", exact=True)
    await send.click()
    await expect(second).to_be_focused()
    await expect(second).to_have_attribute("aria-invalid", "true")
    await expect(conversation(agent).get_by_role("alert")).to_have_text(
        "Fill in every variable of the template first."
    )
    await second.fill("Friday 4 December")
    preview = conversation(agent).get_by_role("figure", name="Preview")
    await expect(preview).to_contain_text("Order NW-48377 is on its way")
    await expect(preview).to_contain_text(
        "Hi Jonas, your parcel left our warehouse today and should reach you by Friday 4 December."
    )
    await expect(preview.get_by_role("list", name="Template buttons")).to_contain_text(
        "Track parcel"
    )
    await assert_named(conversation(agent))
    await expect(conversation(agent).get_by_role("alert")).to_have_count(0)  # filled in now
    await ui.assert_clean()
    await agent.set_viewport_size({"width": 1280, "height": 900})
    await shoot(agent, "template-variables.png")
    assert (SHOTS / "template-variables.png").stat().st_size > 10_000

    await send.click()
    await expect(item_with(agent, "Template: order_shipped")).to_be_visible()
    await expect(first).to_have_value("")  # sent: the values go
    [sent] = await eventually(
        lambda: asyncio.sleep(0, sent_to(stack, phone, "template")), lambda found: len(found) == 1
    )
    assert sent["template"]["name"] == "order_shipped"
    assert sent["template"]["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "NW-48377"}]},
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Jonas"},
                {"type": "text", "text": "Friday 4 December"},
            ],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "NW-48377"}],
        },
    ]

    # A template whose header is a document: the file is uploaded as one, then sent.
    label = pdf("Return label NW-48377")
    await template.select_option(label="return_label (en_US) · utility")
    await choose_file(agent, "Header document", "label-NW-48377.pdf", "application/pdf", label)
    await expect(
        agent.get_by_role("button", name="Remove header document", exact=True)
    ).to_be_visible()
    await agent.get_by_role("textbox", name="Body variable 1", exact=True).fill("Jonas")
    await send.click()
    await expect(item_with(agent, "Template: return_label")).to_be_visible()
    [_, sent] = await eventually(
        lambda: asyncio.sleep(0, sent_to(stack, phone, "template")), lambda found: len(found) == 2
    )
    [header_part, body_part] = sent["template"]["components"]
    media_id = header_part["parameters"][0]["document"]["id"]
    assert stack.standin.media[media_id].data == label
    assert body_part["parameters"] == [{"type": "text", "text": "Jonas"}]
    await ui.assert_clean()


# Snooze (issue 14): parked from the page, woken early when the customer writes


async def test_an_agent_snoozes_a_conversation_and_the_customer_wakes_it(
    stack: Stack, ui: Ui
) -> None:
    phone, name = "31612340077", "Noor Bakker"
    await stack.webhook(DESK, phone, name, "Can you check my refund on Monday?")
    agent = await ui.sign_in("agent", stack.tokens["maria.lopez"], DESK)
    await rows(agent, "New").filter(has_text=name).click()
    await agent.get_by_role("textbox", name="Reply", exact=True).fill("I will, first thing.")
    await agent.get_by_role("button", name="Send", exact=True).click()
    where = conversation(agent).locator(".where")
    await expect(where).to_have_text("Open · assigned to maria.lopez")

    # "Snooze" offers tomorrow 09:00 in the agent's time zone; the API gets it in UTC.
    snooze = agent.get_by_role("button", name="Snooze", exact=True)
    await snooze.click()
    await expect(snooze).to_have_attribute("aria-expanded", "true")
    until = agent.get_by_label("Snooze until", exact=True)
    offered = await until.input_value()
    assert offered.endswith("T09:00"), offered
    await agent.get_by_role("button", name="Snooze until then", exact=True).click()
    await expect(where).to_have_text(
        re.compile(r"^Pending · snoozed until .+ · assigned to maria\.lopez$")
    )
    await expect(item_with(agent, "Snoozed until")).to_be_visible()
    view = await stack.conversation(DESK, phone, bearer(stack.tokens["maria.lopez"]))
    expected = await agent.evaluate("(value) => new Date(value).toISOString()", offered)
    assert datetime.fromisoformat(view["snoozed_until"]) == datetime.fromisoformat(expected)
    await shoot(agent, "snoozed.png")

    # The customer writes: it wakes at once, live, back to Open with its assignee.
    await stack.webhook(DESK, phone, name, "Actually, any news today?")
    await expect(where).to_have_text("Open · assigned to maria.lopez", timeout=DEADLINE_MS)
    await expect(item_with(agent, "Snooze ended: the customer wrote")).to_be_visible()
    await ui.assert_clean()


# Availability (issue 14): set in the top bar, read back through the API


async def test_an_agent_sets_their_availability_in_the_top_bar(stack: Stack, ui: Ui) -> None:
    agent = await ui.sign_in("agent", stack.tokens["maria.lopez"], DESK)
    choice = agent.get_by_role("combobox", name="Availability", exact=True)
    mine = bearer(stack.tokens["maria.lopez"])
    status, before = await call(stack.api, "GET", "/v1/me/availability", mine)
    assert status == 200
    await expect(choice).to_have_value(before["status"])
    for wanted in ("online", "away", "online"):
        await choice.select_option(wanted)
        await expect(choice).to_be_enabled()
        status, now = await call(stack.api, "GET", "/v1/me/availability", mine)
        assert (status, now["status"], now["auto"]) == (200, wanted, False)
    await ui.assert_clean()


# Business hours (issue 14): an admin sets them; a customer writing outside them gets the
# out-of-hours reply, shown as Parley's


async def test_an_admin_sets_business_hours_and_a_customer_gets_the_reply(
    stack: Stack, ui: Ui
) -> None:
    reply = "Thanks! We are closed now and answer from 09:00."
    admin = await ui.sign_in("admin", stack.tokens["olivia.hart"], DESK)
    await admin.get_by_role("button", name="Admin", exact=True).click()
    await admin.get_by_role("checkbox", name="Use business hours (otherwise always open)").check()
    await admin.get_by_role("textbox", name="Time zone", exact=True).fill("Europe/Amsterdam")
    monday = admin.get_by_role("textbox", name="Monday hours", exact=True)
    await monday.fill("9-5")  # not a period: refused, naming the day
    save = admin.get_by_role("button", name="Save business hours", exact=True)
    await save.click()
    await expect(admin.get_by_text(re.compile(r"business_hours\.week\.mon\[0\]"))).to_be_visible()
    # Chromium logs the refused request; that one is expected.
    [refused] = [problem for problem in ui.problems if "status of 422" in problem]
    ui.problems.remove(refused)
    # Office hours on weekdays, and closed today and tomorrow (holidays in Amsterdam),
    # so that the customer below writes outside hours whenever this runs.
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"):
        await admin.get_by_role("textbox", name=f"{day} hours", exact=True).fill(
            "09:00-12:30, 13:30-17:30"
        )
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    closed = f"{today.isoformat()}, {(today + timedelta(days=1)).isoformat()}"
    await admin.get_by_role("textbox", name="Holidays", exact=True).fill(closed)
    await admin.get_by_role("textbox", name="Public holidays of", exact=True).fill("NL")
    await admin.get_by_role("textbox", name="Out-of-hours reply", exact=True).fill(reply)
    await admin.get_by_label("First response target (minutes)", exact=True).fill("60")
    await admin.get_by_label("Warn before (minutes)", exact=True).fill("15")
    await save.click()
    await expect(admin.get_by_text("Saved.", exact=True)).to_be_visible()
    status, channel = await call(stack.api, "GET", f"/v1/channels/{DESK.id}", ADMIN)
    assert status == 200
    assert channel["business_hours"]["time_zone"] == "Europe/Amsterdam"
    assert channel["business_hours"]["week"]["mon"] == ["09:00-12:30", "13:30-17:30"]
    assert channel["business_hours"]["holiday_country"] == "NL"
    assert channel["out_of_hours_reply"] == {"text": reply, "template": None, "language": None}
    assert channel["sla"] == {
        "first_response_s": 3600,
        "next_response_s": None,
        "resolution_s": None,
        "warn_before_s": 900,
    }
    await shoot(admin, "business-hours.png", whole=True)

    phone, name = "31612340099", "Lotte Visser"
    await stack.webhook(DESK, phone, name, "Are you open on Sunday?")
    agent = await ui.sign_in("agent", stack.tokens["maria.lopez"], DESK)
    await rows(agent, "New").filter(has_text=name).click()
    sent = item_with(agent, reply)
    await expect(sent).to_be_visible(timeout=DEADLINE_MS)
    await expect(sent).to_contain_text("sent automatically, out of hours")
    # Its first response is due an hour into the next business day, shown with it.
    await expect(conversation(agent).locator(".where")).to_contain_text("first response due")
    # Back to always open, for the tests that follow.
    status, _ = await call(
        stack.api,
        "PATCH",
        f"/v1/channels/{DESK.id}",
        ADMIN,
        {"business_hours": None, "out_of_hours_reply": None, "sla": None},
    )
    assert status == 200
    await ui.assert_clean()
