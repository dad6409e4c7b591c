"""Onboarding a number on the inbox page, in a real browser (issue 16): an admin edits
the business profile (a refused field shown beside its input) and sets its picture (the
channel's app id asked for first), reads the number's standing from Meta (a declined
name shown as a problem, with Meta's reason), and writes a template that is submitted
for review and followed to its approval.

The receiver (API, webhooks and the page) and the Graph stand-in are real servers, as in
tests/test_onboarding.py: the stand-in plays Meta's decisions as signed webhooks to the
receiver. tests/test_inbox_page.py's browser and page watcher: every control is found
by its role and accessible name, and a console error, dialog or CSP violation fails the
test. The screenshots go to docs/screenshots/onboarding-profile.png and
onboarding-templates.png.
"""

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from playwright.async_api import Browser, FilePayload, Locator, Page, expect
from pytest_aiohttp import AiohttpServer
from redis.asyncio import Redis

from devstack.graph_standin import StandIn
from devstack.standin_onboarding import NumberUpdate
from parley.channels import Channel
from parley.settings import Settings
from tests import test_inbox_page as inbox_page
from tests.api_tools import ADMIN, AiohttpClient, api_with_standin, call
from tests.conftest import EU
from tests.image_tools import square_png
from tests.test_inbox_page import DESKTOP, SHOTS, Ui, assert_named, shoot

chromium = inbox_page.chromium

WABA = "102290129340398"  # EU's business account (tests/conftest.py)
APP = "987654321012345"
PROFILE: dict[str, Any] = {
    "about": "Succulents, delivered",
    "address": "1 Hacker Way, Menlo Park, CA 94025",
    "description": "At Lucky Shrub we grow and ship succulents.",
    "email": "help@luckyshrub.example",
    "websites": ["https://luckyshrub.example", "https://shop.luckyshrub.example"],
    "vertical": "RETAIL",
}
DECLINED = "The display name does not represent your business"
# Scrolls the main area (only it scrolls) to show the first section at its top; the
# height a viewport needs to show every section down to its foot.
FRAME = """
(sections) => {
  const main = document.querySelector("main");
  main.scrollTop += sections[0].getBoundingClientRect().top - main.getBoundingClientRect().top - 12;
  return Math.ceil(Math.max(...sections.map((s) => s.getBoundingClientRect().bottom))) + 12;
}
"""


class World(msgspec.Struct, frozen=True, kw_only=True):
    api: Any
    standin: StandIn
    base: str  # where the browser reaches the receiver
    token: str  # an admin user's

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = await call(self.api, method, path, ADMIN, body)
        assert status in (200, 201), answer
        return answer


@pytest.fixture
async def world(
    aiohttp_client: AiohttpClient,
    aiohttp_server: AiohttpServer,
    settings: Settings,
    channels: list[Channel],
    redis: Redis,
) -> AsyncIterator[World]:
    api, standin = await api_with_standin(
        aiohttp_client,
        aiohttp_server,
        settings,
        channels,
        wabas={EU.id: WABA},
        verified_names={EU.id: "Support EU"},
    )
    status, made = await call(
        api, "POST", "/v1/users", ADMIN, {"id": "olivia.hart", "name": "Olivia Hart", "admin": True}
    )
    assert status == 201, made
    url = api.make_url("/")
    yield World(api=api, standin=standin, base=f"http://{url.host}:{url.port}", token=made["token"])
    await standin.idle()


@pytest.fixture
async def ui(chromium: Browser, world: World) -> AsyncIterator[Ui]:
    pages = Ui(chromium, world.base)
    try:
        yield pages
    finally:
        await pages.close()


async def admin_screen(ui: Ui, world: World) -> Page:
    page = await ui.sign_in("admin", world.token, EU)
    await page.get_by_role("button", name="Admin", exact=True).click()
    return page


def region(page: Page, name: str) -> Locator:
    return page.get_by_role("region", name=name, exact=True)


def fact(standing: Locator, term: str) -> Locator:
    """What the standing's list says for `term` (the <dd> after its <dt>)."""
    return standing.locator("dt", has_text=term).locator("xpath=following-sibling::dd[1]")


def take_refusal(ui: Ui, status: int) -> None:
    """Chromium logs each refused request as a console error: exactly one, taken."""
    [logged] = [problem for problem in ui.problems if f"status of {status}" in problem]
    ui.problems.remove(logged)


async def frame(page: Page, *sections: Locator) -> None:
    """The viewport as tall as needed to show the sections, the first at the top."""
    bottom = await page.evaluate(FRAME, [await s.element_handle() for s in sections])
    await page.set_viewport_size({"width": DESKTOP["width"], "height": bottom})


def profile_requests(world: World) -> list[Any]:
    """The bodies of the profile updates Meta was sent, in order."""
    logged = msgspec.to_builtins(world.standin.onboarding.requests)
    return [
        r["json"]
        for r in logged
        if r["path"].endswith("/whatsapp_business_profile") and r["method"] == "POST"
    ]


async def test_an_admin_edits_the_profile_and_sets_its_picture(world: World, ui: Ui) -> None:
    # What Meta has before: an about line, and the standing read once.
    await world.admin("PATCH", f"/v1/channels/{EU.id}/profile", {"about": "Succulents"})
    await world.admin("POST", f"/v1/channels/{EU.id}/standing/refresh")
    page = await admin_screen(ui, world)
    profile = region(page, "Business profile")
    about = profile.get_by_role("textbox", name="About", exact=True)
    await expect(about).to_have_value("Succulents")
    website_2 = profile.get_by_role("textbox", name="Website 2", exact=True)
    save = profile.get_by_role("button", name="Save profile", exact=True)
    said = profile.get_by_role("status").filter(has_text="Not saved")

    # A website without its scheme: refused, the API's words beside that input.
    await profile.get_by_role("textbox", name="Website 1", exact=True).fill(PROFILE["websites"][0])
    await website_2.fill("shop.luckyshrub.example")
    await save.click()
    await expect(said).to_have_text("Not saved: see the field marked.")
    await expect(website_2).to_have_attribute("aria-invalid", "true")
    await expect(website_2).to_have_accessible_description(
        "must start with http:// or https:// and be at most 256 characters"
    )
    await expect(website_2).to_be_focused()
    take_refusal(ui, 422)
    assert world.standin.onboarding.profile(EU.id).websites is None

    # Every field, then saved: Meta has what was typed.
    await about.fill(PROFILE["about"])
    await profile.get_by_role("textbox", name="Address", exact=True).fill(PROFILE["address"])
    description = profile.get_by_role("textbox", name="Description", exact=True)
    await description.fill(PROFILE["description"])
    await profile.get_by_role("textbox", name="Email", exact=True).fill(PROFILE["email"])
    await website_2.fill(PROFILE["websites"][1])
    await expect(website_2).not_to_have_attribute("aria-invalid", "true")  # typing clears it
    category = profile.get_by_role("combobox", name="Business category", exact=True)
    await category.select_option(PROFILE["vertical"])
    await save.click()
    await expect(profile.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    kept = msgspec.structs.asdict(world.standin.onboarding.profile(EU.id))
    assert {name: kept[name] for name in PROFILE} == PROFILE
    # Only what changed goes to Meta.
    await description.fill("We grow succulents in Lisbon and ship them across Europe.")
    async with page.expect_response(lambda r: r.request.method == "PATCH") as patched:
        await save.click()
    assert (await patched.value).status == 200
    assert profile_requests(world)[-1] == {
        "messaging_product": "whatsapp",
        "description": "We grow succulents in Lisbon and ship them across Europe.",
    }

    # The picture needs the channel's app: asked for, saved, and the upload sent again.
    png = square_png(640)
    chooser = profile.get_by_label("Profile picture", exact=True)
    shrub: FilePayload = {"name": "shrub.png", "mimeType": "image/png", "buffer": png}
    await chooser.set_input_files(files=[shrub])
    await expect(profile.get_by_text("Set the channel's Meta app id first")).to_be_visible()
    take_refusal(ui, 409)
    app_id = profile.get_by_role("textbox", name="App id", exact=True)
    await expect(app_id).to_be_focused()
    await app_id.fill(APP)
    await profile.get_by_role("button", name="Save app id", exact=True).click()
    await expect(
        profile.get_by_role("status").filter(has_text="The new picture is set.")
    ).to_be_visible()
    await expect(app_id).to_be_hidden()
    channel = await world.admin("GET", f"/v1/channels/{EU.id}")
    assert channel["app_id"] == APP
    # Meta's copy, served by Parley from its own origin (the CSP holds: no violation).
    shown = profile.get_by_role("img", name="Profile picture", exact=True)
    assert await shown.evaluate("(img) => img.decode().then(() => img.naturalWidth)") == 640
    picture_url = world.standin.onboarding.profile(EU.id).profile_picture_url
    assert picture_url is not None
    async with world.api.session.get(picture_url) as served:
        assert await served.read() == png  # what Meta now shows is the very file
    link = profile.get_by_role("link", name="Open the current picture", exact=True)
    await expect(link).to_have_attribute("href", picture_url)
    await expect(link).to_have_attribute("rel", "noopener noreferrer")

    await assert_named(profile)
    await assert_named(region(page, "Number standing"))
    await frame(page, profile, region(page, "Number standing"))
    await shoot(page, "onboarding-profile.png")
    assert (SHOTS / "onboarding-profile.png").stat().st_size > 10_000
    await ui.assert_clean()


async def test_the_standing_shows_a_declined_name_with_metas_reason(world: World, ui: Ui) -> None:
    page = await admin_screen(ui, world)
    standing = region(page, "Number standing")
    await expect(fact(standing, "Verified name")).to_have_text("not read yet")
    await expect(fact(standing, "Last read from Meta")).to_have_text("not read yet")
    refresh = standing.get_by_role("button", name="Refresh from Meta", exact=True)
    await refresh.click()
    await expect(fact(standing, "Verified name")).to_have_text("Support EU")
    number = world.standin.onboarding.number(EU.id)
    await expect(fact(standing, "Display number")).to_have_text(number.display_phone_number)
    await expect(fact(standing, "Name review")).to_have_text("Approved")
    await expect(fact(standing, "Quality")).to_have_text("Green (high)")
    await expect(fact(standing, "Messaging limit")).to_contain_text("1K customers a day")
    await expect(fact(standing, "Verified badge")).to_have_text("No badge: not requested")
    await expect(fact(standing, "Last read from Meta")).not_to_have_text("not read yet")
    await expect(standing.get_by_role("alert")).to_have_count(0)

    # Meta declines a new name (its webhook reaches the receiver); the admin refreshes.
    posted = await world.standin.onboarding.update_number(
        EU.id,
        NumberUpdate(
            name_decision="REJECTED",
            requested_verified_name="Best Shrubs",
            rejection_reason=DECLINED,
        ),
    )
    assert set(posted.values()) == {200}
    await refresh.click()
    await expect(fact(standing, "Name review")).to_have_text("Declined (“Best Shrubs”)")
    problem = standing.get_by_role("alert")
    await expect(problem).to_have_text(
        f"Meta declined the display name “Best Shrubs”: {DECLINED}. Nothing can be sent "
        "from this number until a new name is approved."
    )
    await expect(fact(standing, "Verified name")).to_have_text("Support EU")

    # What Parley cannot do is said, with where it is done.
    answer = await world.admin("GET", f"/v1/channels/{EU.id}/standing")
    await expect(standing).to_contain_text(
        "Changing the display name and requesting the verified badge happen in WhatsApp Manager"
    )
    for name, url in [
        ("WhatsApp Manager", answer["manage_url"]),
        ("What the badge needs", answer["badge_help_url"]),
    ]:
        link = standing.get_by_role("link", name=name, exact=True)
        await expect(link).to_have_attribute("href", url)
        await expect(link).to_have_attribute("target", "_blank")
        await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await assert_named(standing)
    await ui.assert_clean()


async def write_template(templates: Locator, name: str, body: str, examples: list[str]) -> None:
    await templates.get_by_role("textbox", name="Template name", exact=True).fill(name)
    await templates.get_by_role("textbox", name="Body", exact=True).fill(body)
    for n, example in enumerate(examples, start=1):
        field = templates.get_by_role("textbox", name=f"Example of {{{{{n}}}}} in the body")
        await field.fill(example)


async def test_a_template_is_written_submitted_and_followed_to_approval(
    world: World, ui: Ui
) -> None:
    await world.admin("POST", f"/v1/channels/{EU.id}/standing/refresh")
    page = await admin_screen(ui, world)
    templates = region(page, "Templates")
    listed = templates.get_by_role("list", name="Templates on this channel", exact=True)
    await expect(listed).to_have_text("No templates yet.")
    await templates.get_by_role("combobox", name="Category", exact=True).select_option("UTILITY")
    await expect(templates.get_by_role("textbox", name="Language", exact=True)).to_have_value(
        "en_US"
    )
    # Authentication templates and media headers: said to be made in WhatsApp Manager.
    await expect(templates).to_contain_text("Authentication templates")
    manager = templates.get_by_role("link", name="WhatsApp Manager", exact=True)
    standing = await world.admin("GET", f"/v1/channels/{EU.id}/standing")
    await expect(manager).to_have_attribute("href", standing["manage_url"])

    # An example input for each variable, as the body is typed; typed values stay.
    body = templates.get_by_role("textbox", name="Body", exact=True)
    await write_template(templates, "order_update", "Hi {{1}}, your order ships today.", ["Ana"])
    second = templates.get_by_role("textbox", name="Example of {{2}} in the body", exact=True)
    await expect(second).to_have_count(0)
    await body.fill("Hi {{1}}, your order {{2}} ships today.")
    first = templates.get_by_role("textbox", name="Example of {{1}} in the body", exact=True)
    await expect(first).to_have_value("Ana")
    await second.fill("NW-4411")

    # Buttons come and go: a link button stays, a quick reply is removed.
    add = templates.get_by_role("button", name="Add button", exact=True)
    await add.click()
    await templates.get_by_role("combobox", name="Type of button 1", exact=True).select_option(
        "URL"
    )
    await templates.get_by_role("textbox", name="Text of button 1", exact=True).fill("Track")
    link = templates.get_by_role("textbox", name="Link of button 1", exact=True)
    example = templates.get_by_role("textbox", name="Example link of button 1", exact=True)
    await expect(example).to_be_hidden()
    await link.fill("shrub.example/t/{{1}}")
    await example.fill("https://shrub.example/t/4411")
    await add.click()
    await templates.get_by_role("textbox", name="Text of button 2", exact=True).fill("Thanks")
    await templates.get_by_role("button", name="Remove button 2", exact=True).click()
    await expect(templates.get_by_role("group", name="Button 2", exact=True)).to_have_count(0)

    # A link without its scheme is refused, beside that input.
    submit = templates.get_by_role("button", name="Submit for review", exact=True)
    await submit.click()
    await expect(link).to_have_attribute("aria-invalid", "true")
    await expect(link).to_have_accessible_description(
        "an http(s) URL of at most 2000 characters http(s); it may end in {{1}}, filled in per message."
    )
    take_refusal(ui, 422)
    assert WABA not in world.standin.templates or world.standin.templates[WABA] == []

    await link.fill("https://shrub.example/t/{{1}}")
    await submit.click()
    await expect(templates.get_by_role("status").filter(has_text="Submitted")).to_have_text(
        "Submitted order_update (en_US) for Meta's review: PENDING."
    )
    line = listed.get_by_role("listitem").filter(has_text="order_update")
    await expect(line).to_contain_text("PENDING")
    await expect(body).to_have_value("")  # the form is ready for the next one
    [sent] = world.standin.templates[WABA]
    assert (sent.name, sent.language, sent.category, sent.status) == (
        "order_update",
        "en_US",
        "UTILITY",
        "PENDING",
    )
    assert sent.components == [
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} ships today.",
         "example": {"body_text": [["Ana", "NW-4411"]]}},
        {"type": "BUTTONS", "buttons": [
            {"type": "URL", "text": "Track", "url": "https://shrub.example/t/{{1}}",
             "example": ["https://shrub.example/t/4411"]},
        ]},
    ]  # fmt: skip

    # Meta approves it; the page shows it once drawn again.
    status = await world.standin.onboarding.review_template(
        WABA, "order_update", "en_US", "APPROVED"
    )
    assert status == 200
    await page.reload()
    await page.get_by_role("button", name="Admin", exact=True).click()
    await expect(line).to_contain_text("APPROVED")
    await templates.get_by_role("button", name="Re-sync from Meta", exact=True).click()
    await expect(templates.get_by_role("status").filter(has_text="Re-synced")).to_have_text(
        f"Re-synced: 1 template from business account {WABA}."
    )
    await expect(line).to_contain_text("APPROVED")

    # The next one under way, for the picture: a header with its example, a link.
    await write_template(
        templates,
        "shipping_delay",
        "Hi {{1}}, your order {{2}} is running late: it will reach you on {{3}}.",
        ["Ana", "NW-4411", "Friday"],
    )
    await templates.get_by_role("textbox", name="Header", exact=True).fill("Order {{1}}")
    await templates.get_by_role("textbox", name="Example of {{1}} in the header").fill("NW-4411")
    await templates.get_by_role("textbox", name="Footer", exact=True).fill("Lucky Shrub")
    await add.click()
    await templates.get_by_role("combobox", name="Type of button 1", exact=True).select_option(
        "URL"
    )
    await templates.get_by_role("textbox", name="Text of button 1", exact=True).fill("Track")
    await link.fill("https://shrub.example/t/{{1}}")
    await example.fill("https://shrub.example/t/4411")
    await assert_named(templates)
    await frame(page, templates)
    await shoot(page, "onboarding-templates.png")
    assert (SHOTS / "onboarding-templates.png").stat().st_size > 10_000

    # Deleted after a confirm on the page: gone here and from the business account.
    delete = templates.get_by_role("button", name="Delete order_update (en_US)", exact=True)
    await delete.click()
    await templates.get_by_role("button", name="Keep order_update (en_US)", exact=True).click()
    await expect(delete).to_be_focused()  # kept: nothing was sent
    assert [t.name for t in world.standin.templates[WABA]] == ["order_update"]
    await delete.click()
    confirm = templates.get_by_role("button", name="Confirm deleting order_update (en_US)")
    await confirm.click()
    await expect(listed).to_have_text("No templates yet.")
    assert world.standin.templates[WABA] == []
    await ui.assert_clean()
