"""Routing on the inbox page, in a real browser: an admin switches a channel's routing on
(a refused capacity shown as the API words it) and sets a user's own capacity; the team
list shows each agent's availability and load, kept current from the change feed while
the router hands an online agent conversations up to the channel's capacity.

tests/test_inbox_page.py's stack and browser (module-scoped, so this module gets its own
stack) and its helpers; the screenshot goes to docs/screenshots/routing.png.
"""

import asyncio
from typing import Any

from playwright.async_api import Locator, Page, expect

from tests import test_inbox_page as pages
from tests.api_tools import ADMIN, bearer, call
from tests.test_inbox_page import (
    DEADLINE_MS,
    DESKTOP,
    SHOP,
    SHOTS,
    Stack,
    Ui,
    eventually,
    rows,
    shoot,
)

stack = pages.stack
chromium = pages.chromium
ui = pages.ui

ROUTED = "Route new conversations to available agents"
RELEASE_ALL = "When an agent goes offline, also release their open and pending conversations"
# Scrolls the main area (only it scrolls) to show the section at its top; the height a
# viewport needs to show down to the section's foot.
SCROLL_TO_TOP = """
(section) => {
  const main = document.querySelector("main");
  main.scrollTop += section.getBoundingClientRect().top - main.getBoundingClientRect().top - 12;
  return Math.ceil(section.getBoundingClientRect().bottom) + 12;
}
"""
ROUTING = {"capacity": 2, "reassign_after_s": 600, "release_all_when_offline": True}


def routing_section(page: Page) -> Locator:
    return page.get_by_role("region", name="Routing", exact=True)


def agent_line(team: Locator, user: str) -> Locator:
    return team.get_by_role("listitem").filter(has_text=user)


async def channel_of(stack: Stack) -> Any:
    status, channel = await call(stack.api, "GET", f"/v1/channels/{SHOP.id}", ADMIN)
    assert status == 200, channel
    return channel


async def test_an_admin_turns_routing_on_and_sets_a_users_capacity(stack: Stack, ui: Ui) -> None:
    admin = await ui.sign_in("admin", stack.tokens["olivia.hart"], SHOP)
    await admin.get_by_role("button", name="Admin", exact=True).click()
    routing = routing_section(admin)
    switch = routing.get_by_role("switch", name=ROUTED, exact=True)
    capacity = routing.get_by_role("spinbutton", name="Conversations per agent", exact=True)
    reassign = routing.get_by_role(
        "spinbutton", name="Reassign if unanswered after (minutes)", exact=True
    )
    release_all = routing.get_by_role("checkbox", name=RELEASE_ALL, exact=True)
    await expect(switch).not_to_be_checked()  # off: whoever answers gets it
    await expect(capacity).to_be_disabled()
    await switch.check()
    await expect(capacity).to_be_enabled()

    # A capacity of 0 is refused; the page says so as the API does, naming the field.
    await capacity.fill("0")
    save = routing.get_by_role("button", name="Save routing", exact=True)
    await save.click()
    said = routing.get_by_role("status")
    await expect(said).to_have_text("must be 1 to 1000 (routing.capacity)")
    await expect(said).to_have_class("form-status bad")
    [refused] = [problem for problem in ui.problems if "status of 422" in problem]
    ui.problems.remove(refused)  # Chromium logs the refused request
    assert (await channel_of(stack))["routing"] is None

    await capacity.fill("2")
    await reassign.fill("10")
    await release_all.check()
    await save.click()
    await expect(said).to_have_text("Saved.")
    assert (await channel_of(stack))["routing"] == ROUTING

    # A user's own capacity across channels, saved and read back.
    users = admin.get_by_role("region", name="Users", exact=True)
    tom = users.get_by_role("spinbutton", name="Capacity across channels of tom.becker", exact=True)
    await expect(tom).to_have_value("")
    await tom.fill("4")
    await tom.press("Enter")  # saved as entered (or as the field is left)
    await expect(users.get_by_text("Capacity of tom.becker: 4.", exact=True)).to_be_visible()
    status, saved = await call(stack.api, "GET", "/v1/users/tom.becker/capacity", ADMIN)
    assert (status, saved) == (200, {"user": "tom.becker", "total_capacity": 4})

    # Both as saved once the screen is drawn again.
    await admin.get_by_role("button", name="Inbox", exact=True).click()
    await admin.get_by_role("button", name="Admin", exact=True).click()
    await expect(routing_section(admin).get_by_role("switch", name=ROUTED)).to_be_checked()
    await expect(capacity).to_have_value("2")
    await expect(reassign).to_have_value("10")
    await expect(release_all).to_be_checked()
    await expect(tom).to_have_value("4")
    await ui.assert_clean()


async def test_the_team_shows_availability_and_load_as_the_router_hands_out_work(
    stack: Stack, ui: Ui
) -> None:
    # Routing on with a capacity of 2 (as the test above leaves it), Tom at 4 overall.
    status, body = await call(
        stack.api, "PATCH", f"/v1/channels/{SHOP.id}", ADMIN, {"routing": ROUTING}
    )
    assert status == 200, body
    status, body = await call(
        stack.api, "PUT", "/v1/users/tom.becker/capacity", ADMIN, {"total_capacity": 4}
    )
    assert status == 200, body
    # Ana is the only one online: the router hands her what comes, up to 2.
    ana = bearer(stack.tokens["ana.silva"])
    status, body = await call(stack.api, "PUT", "/v1/me/availability", ana, {"status": "online"})
    assert status == 200, body

    agent = await ui.sign_in("agent", stack.tokens["ana.silva"], SHOP)
    team = agent.get_by_role("list", name="Team", exact=True)
    mine = agent_line(team, "ana.silva")
    await expect(mine).to_contain_text("ana.silva (you) · online · 0/2")
    tom = agent_line(team, "tom.becker")
    await expect(tom).to_contain_text("tom.becker · offline · 0/2")
    await expect(tom).to_contain_text("0/4 overall")
    # A screen reader hears the loads in words.
    await expect(tom).to_match_aria_snapshot(
        "- listitem: tom.becker · offline · 0 open of 2 · 0 open of 4 across channels"
    )
    await expect(agent.locator(".team-summary")).to_have_text("1 of 4 online")

    customers = [
        ("351912340001", "Inês Costa", "Hi! Do the Trail Runner 3 shoes come in size 38?"),
        ("351912340002", "Rui Almeida", "Can I still change the address on order NW-50211?"),
        ("351912340003", "Marta Sousa", "Is the Storm Shell jacket waterproof or resistant?"),
    ]
    for count, (phone, name, text) in enumerate(customers[:2], start=1):
        await stack.webhook(SHOP, phone, name, text)
        # Routed to Ana: the line follows from the change feed, without a reload.
        await expect(mine).to_contain_text(f"online · {count}/2", timeout=DEADLINE_MS)
        view = await stack.conversation(SHOP, phone)
        assert (view["queue"], view["assignee"]) == ("open", "ana.silva"), view
    await expect(mine.locator(".agent-load")).to_have_attribute("data-full", "true")

    # Ana is full: the third customer waits in New.
    phone, name, text = customers[2]
    await stack.webhook(SHOP, phone, name, text)
    await expect(rows(agent, "New").filter(has_text=name)).to_be_visible()
    await asyncio.sleep(0.5)  # time enough for a router pass
    view = await stack.conversation(SHOP, phone)
    assert (view["queue"], view["assignee"]) == ("new", None), view
    await expect(mine).to_contain_text("online · 2/2")

    # The admin sees the same beside the channel's routing.
    admin = await ui.sign_in("admin", stack.tokens["olivia.hart"], SHOP)
    await admin.get_by_role("button", name="Admin", exact=True).click()
    agents = routing_section(admin).get_by_role("list", name="Agents on this channel")
    await expect(agent_line(agents, "ana.silva")).to_contain_text("ana.silva · online · 2/2")
    await expect(agent_line(agents, "olivia.hart")).to_contain_text("(you) · offline · 0/2")
    # The picture: the top bar, then the routing section's row of the admin screen.
    bottom = await routing_section(admin).evaluate(SCROLL_TO_TOP)
    await admin.set_viewport_size({"width": DESKTOP["width"], "height": bottom})
    await shoot(admin, "routing.png")
    assert (SHOTS / "routing.png").stat().st_size > 10_000

    # Ana goes offline from the top bar: her line says so at once; with the channel's
    # "release all", the router takes her conversations back to New.
    await agent.get_by_role("combobox", name="Availability", exact=True).select_option("offline")
    await expect(mine).to_contain_text("ana.silva (you) · offline · 0/2", timeout=DEADLINE_MS)
    # The admin's list follows the releases on the change feed.
    await expect(agent_line(agents, "ana.silva")).to_contain_text("ana.silva · offline · 0/2")
    await eventually(
        lambda: stack.conversation(SHOP, customers[0][0]),
        lambda view: view["queue"] == "new" and view["assignee"] is None,
    )
    await ui.assert_clean()
