"""Onboarding a number the rest of the way, over HTTP against the Graph stand-in: the
business profile and its picture (through the Resumable Upload API), the number's
standing moved by a refresh and by Meta's name and quality webhooks, and templates
written in Parley, submitted for review and followed to their decision.

The receiver (API and webhook in one app) and the stand-in are real servers: the
stand-in posts its signed webhooks to the receiver, as Meta would."""

import io
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from pytest_aiohttp import AiohttpServer
from redis.asyncio import Redis

from devstack.graph_standin import StandIn
from devstack.standin_onboarding import NumberUpdate, ReviewStatus
from parley.business_profile import PICTURE_MAX_BYTES
from parley.channels import Channel
from parley.settings import Settings
from parley.state import Queue
from tests.api_tools import (
    ADMIN,
    AiohttpClient,
    api_with_standin,
    call,
    put_conversation,
    user_with_role,
)
from tests.conftest import EU
from tests.image_tools import picture, square_png

WABA = "102290129340398"
APP = "987654321012345"
T0 = 1_790_000_000.0
CUSTOMER = "5511987654321"
ORDER_UPDATE = {
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "header": {"text": "Order {{1}}", "example": "4411"},
    "body": {"text": "Hi {{1}}, order {{2}} ships today.", "examples": ["Ana", "4411"]},
    "footer": "Lucky Shrub",
    "buttons": [
        {"type": "URL", "text": "Track", "url": "https://shrub.example/t/{{1}}",
         "example": "https://shrub.example/t/4411"},
        {"type": "QUICK_REPLY", "text": "Thanks"},
    ],
}  # fmt: skip


class World(msgspec.Struct):
    api: Any
    standin: StandIn
    agent: dict[str, str]  # a contributor on EU

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await call(self.api, method, path, ADMIN, body)

    def requests(self, path_end: str) -> list[dict[str, Any]]:
        """What the stand-in's onboarding edges were asked, on paths ending so."""
        logged = msgspec.to_builtins(self.standin.onboarding.requests)
        return [r for r in logged if r["path"].endswith(path_end)]


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
    status, _ = await call(api, "PATCH", f"/v1/channels/{EU.id}", ADMIN,
                           {"waba_id": WABA, "app_id": APP})  # fmt: skip
    assert status == 200
    agent = await user_with_role(api, "cora", EU.id, "contributor")
    yield World(api, standin, agent)
    await standin.idle()


# --- Must show 1: the business profile ---------------------------------------------------


EVERY_FIELD = {
    "about": "Succulents, delivered",
    "address": "1 Hacker Way, Menlo Park, CA 94025",
    "description": "At Lucky Shrub we grow and ship succulents.",
    "email": "help@luckyshrub.example",
    "websites": ["https://luckyshrub.example", "https://shop.luckyshrub.example"],
    "vertical": "RETAIL",
}


async def test_every_profile_field_is_read_and_changed_in_metas_shape(world: World) -> None:
    status, profile = await world.admin("PATCH", f"/v1/channels/{EU.id}/profile", EVERY_FIELD)
    assert status == 200, profile
    assert {name: profile[name] for name in EVERY_FIELD} == EVERY_FIELD
    status, read = await call(world.api, "GET", f"/v1/channels/{EU.id}/profile", ADMIN)
    assert (status, read) == (200, profile)
    # What reached Meta: the documented update body, and reads naming every field.
    (update,) = [r for r in world.requests("/whatsapp_business_profile") if r["method"] == "POST"]
    assert update["json"] == {"messaging_product": "whatsapp", **EVERY_FIELD}
    reads = [r for r in world.requests("/whatsapp_business_profile") if r["method"] == "GET"]
    assert {r["query"]["fields"] for r in reads} == {
        "about,address,description,email,profile_picture_url,websites,vertical"
    }
    assert all(r["headers"]["authorization_scheme"] == "Bearer" for r in reads)
    # Clearing: "" and [] go to Meta as they are.
    status, cleared = await world.admin(
        "PATCH", f"/v1/channels/{EU.id}/profile", {"address": "", "websites": []}
    )
    assert status == 200, cleared
    assert (cleared["address"] or None, cleared["websites"]) == (None, [])


async def test_the_picture_goes_up_through_the_resumable_upload_api(world: World) -> None:
    none_yet = await world.api.get(f"/v1/channels/{EU.id}/profile/picture", headers=ADMIN)
    assert none_yet.status == 404
    png = square_png(640)
    response = await world.api.put(
        f"/v1/channels/{EU.id}/profile/picture",
        data=png,
        headers={**ADMIN, "Content-Type": "image/png"},
    )
    profile = await response.json()
    assert response.status == 200, profile
    # The URL Meta gives serves the very bytes uploaded.
    async with world.api.session.get(profile["profile_picture_url"]) as shown:
        assert (shown.status, await shown.read()) == (200, png)
    # And Parley serves Meta's copy from its own origin, for the page's CSP.
    served = await world.api.get(f"/v1/channels/{EU.id}/profile/picture", headers=ADMIN)
    assert (served.status, served.content_type, await served.read()) == (200, "image/png", png)
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    (session,) = world.requests(f"/{APP}/uploads")
    assert session["method"] == "POST"
    assert session["query"] == {
        "file_name": "profile.png",
        "file_length": str(len(png)),
        "file_type": "image/png",
    }
    (upload,) = [r for r in world.requests("") if "upload:" in r["path"]]
    assert (upload["method"], upload["bytes"]) == ("POST", len(png))
    assert upload["headers"] == {"file_offset": "0", "authorization_scheme": "OAuth"}
    (update,) = [r for r in world.requests("/whatsapp_business_profile") if r["method"] == "POST"]
    assert set(update["json"]) == {"messaging_product", "profile_picture_handle"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "profile"),
        ({"about": ""}, "about"),
        ({"about": "x" * 140}, "about"),
        ({"address": "x" * 257}, "address"),
        ({"description": "x" * 513}, "description"),
        ({"email": "help-at-example"}, "email"),
        ({"email": "a@b.co" + "m" * 123}, "email"),
        ({"websites": ["https://a.example"] * 3}, "websites"),
        ({"websites": ["luckyshrub.example"]}, "websites[0]"),
        ({"vertical": "SPACESHIPS"}, "vertical"),
        ({"about": 7}, "about"),
        ({"profile_picture_url": "https://x.example/p.png"}, "profile_picture_url"),
    ],
)
async def test_each_refused_profile_shape_is_a_422_naming_it_and_reaches_no_one(
    world: World, body: dict[str, Any], field: str
) -> None:
    status, answer = await world.admin("PATCH", f"/v1/channels/{EU.id}/profile", body)
    assert status == 422, answer
    assert (answer["error"]["code"], answer["error"]["field"]) == ("invalid_field", field)
    assert world.standin.onboarding.requests == []


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (picture("GIF", 640, 640), 422, "invalid_field"),
        (square_png(100), 422, "invalid_field"),
        (b"\x89PNG\r\n\x1a\n not really", 422, "invalid_field"),
        (b"", 422, "invalid_field"),
        (b"\0" * (PICTURE_MAX_BYTES + 1), 413, "too_large"),
    ],
    ids=["gif", "too-small", "fake-png", "empty", "too-large"],
)
async def test_a_picture_meta_would_refuse_is_refused_before_anything_is_sent(
    world: World, data: bytes, status: int, code: str
) -> None:
    response = await world.api.put(
        f"/v1/channels/{EU.id}/profile/picture", data=io.BytesIO(data), headers=ADMIN
    )
    answer = await response.json()
    assert (response.status, answer["error"]["code"]) == (status, code), answer
    if status == 422:
        assert answer["error"]["field"] == "picture"
    assert world.standin.onboarding.requests == []


async def test_a_picture_needs_the_channels_app(world: World) -> None:
    await world.admin("PATCH", f"/v1/channels/{EU.id}", {"app_id": None})
    response = await world.api.put(
        f"/v1/channels/{EU.id}/profile/picture", data=square_png(200), headers=ADMIN
    )
    answer = await response.json()
    assert (response.status, answer["error"]["code"]) == (409, "no_app_id")
    assert world.standin.onboarding.requests == []


# --- Must show 2: display-name review and quality ---------------------------------------


async def standing(world: World) -> dict[str, Any]:
    status, body = await call(world.api, "GET", f"/v1/channels/{EU.id}/standing", ADMIN)
    assert status == 200, body
    return dict(body)


async def test_webhooks_and_refreshes_move_the_numbers_standing(world: World) -> None:
    unknown = await standing(world)
    assert unknown["standing"]["name_status"] is None and unknown["problems"] == []
    status, read = await world.admin("POST", f"/v1/channels/{EU.id}/standing/refresh")
    assert status == 200, read
    record = world.standin.onboarding.number(EU.id)
    assert read["standing"] | {"refreshed_at": None, "updated_at": None} == {
        "verified_name": "Support EU",
        "display_phone_number": record.display_phone_number,
        "name_status": "APPROVED",
        "requested_name": None,
        "name_rejection_reason": None,
        "quality_rating": "GREEN",
        "messaging_limit": "TIER_1K",
        "official_business_account": False,
        "oba_status": "NOT_STARTED",
        "refreshed_at": None,
        "updated_at": None,
    }
    assert read["manage_url"].startswith("https://business.facebook.com/")

    # Meta declines a new name: the webhook, through the receiver, shows it with its reason.
    reason = "The display name does not represent your business"
    posted = await world.standin.onboarding.update_number(
        EU.id,
        NumberUpdate(
            name_decision="REJECTED", requested_verified_name="Best Shrubs", rejection_reason=reason
        ),
    )
    assert set(posted.values()) == {200}
    after = await standing(world)
    assert (after["standing"]["name_status"], after["standing"]["name_rejection_reason"]) == (
        "DECLINED",
        reason,
    )
    assert after["standing"]["verified_name"] == "Support EU"
    assert after["problems"] == ["name_declined"]

    # Quality falls to RED, and the limit with it.
    await world.standin.onboarding.update_number(
        EU.id, NumberUpdate(quality_event="FLAGGED", current_limit="TIER_250")
    )
    flagged = await standing(world)
    assert (flagged["standing"]["quality_rating"], flagged["standing"]["messaging_limit"]) == (
        "RED",
        "TIER_250",
    )
    assert flagged["problems"] == ["name_declined", "quality_red"]
    # A refresh keeps the reason of a name still declined.
    _, again = await world.admin("POST", f"/v1/channels/{EU.id}/standing/refresh")
    assert again["standing"]["name_rejection_reason"] == reason

    # Approved after all: the verified name changes.
    await world.standin.onboarding.update_number(
        EU.id, NumberUpdate(name_decision="APPROVED", requested_verified_name="Best Shrubs")
    )
    approved = await standing(world)
    assert (approved["standing"]["name_status"], approved["standing"]["verified_name"]) == (
        "APPROVED",
        "Best Shrubs",
    )
    assert "name_declined" not in approved["problems"]
    metrics = await (await world.api.get("/metrics")).text()
    assert 'parley_number_updates_total{field="name",outcome="applied"} 2.0' in metrics
    assert 'parley_number_updates_total{field="quality",outcome="applied"} 1.0' in metrics


async def test_a_webhook_for_a_number_never_read_is_counted_not_applied(
    world: World, redis: Redis
) -> None:
    posted = await world.standin.onboarding.update_number(
        EU.id, NumberUpdate(name_decision="REJECTED", rejection_reason="No")
    )
    assert set(posted.values()) == {200}  # taken: Meta must not retry it
    assert (await standing(world))["standing"]["name_status"] is None
    metrics = await (await world.api.get("/metrics")).text()
    assert 'parley_number_updates_total{field="name",outcome="unknown_number"} 1.0' in metrics


async def test_the_badge_is_shown_as_meta_has_it(world: World) -> None:
    await world.standin.onboarding.update_number(EU.id, NumberUpdate(oba_status="APPROVED"))
    _, read = await world.admin("POST", f"/v1/channels/{EU.id}/standing/refresh")
    assert (read["standing"]["oba_status"], read["standing"]["official_business_account"]) == (
        "APPROVED",
        True,
    )
    assert read["badge_help_url"].startswith("https://developers.facebook.com/")


# --- Must show 3: templates submitted from Parley ------------------------------------------


async def names(world: World, headers: dict[str, str]) -> dict[str, str]:
    status, body = await call(world.api, "GET", f"/v1/channels/{EU.id}/templates", headers)
    assert status == 200, body
    return {t["name"]: t["status"] for t in body["templates"]}


async def reply(world: World, redis: Redis) -> tuple[int, Any]:
    await put_conversation(redis, EU.id, CUSTOMER, Queue.NEW, T0)
    body = {
        "template": "order_update",
        "language": "en_US",
        "parameters": {"header_text": "4411", "body": ["Ana", "4411"], "buttons": {"0": "4411"}},
    }
    path = f"/v1/conversations/{EU.id}/{CUSTOMER}/replies"
    return await call(world.api, "POST", path, world.agent, body)


@pytest.mark.parametrize(
    ("decision", "reason"), [("APPROVED", None), ("REJECTED", "INVALID_FORMAT")]
)
async def test_a_template_written_here_is_reviewed_and_only_an_approved_one_is_offered(
    world: World, redis: Redis, decision: ReviewStatus, reason: str | None
) -> None:
    status, created = await world.admin("POST", f"/v1/channels/{EU.id}/templates", ORDER_UPDATE)
    assert status == 201, created
    assert (created["status"], created["variables"]) == (
        "PENDING",
        ["header_text", "body:2", "button:0"],
    )
    (sent,) = [r for r in world.requests(f"/{WABA}/message_templates") if r["method"] == "POST"]
    assert sent["json"] == {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "allow_category_change": True,
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}",
             "example": {"header_text": ["4411"]}},
            {"type": "BODY", "text": "Hi {{1}}, order {{2}} ships today.",
             "example": {"body_text": [["Ana", "4411"]]}},
            {"type": "FOOTER", "text": "Lucky Shrub"},
            {"type": "BUTTONS", "buttons": [
                {"type": "URL", "text": "Track", "url": "https://shrub.example/t/{{1}}",
                 "example": ["https://shrub.example/t/4411"]},
                {"type": "QUICK_REPLY", "text": "Thanks"},
            ]},
        ],
    }  # fmt: skip
    # Pending: admins see it, agents do not, and a reply cannot use it.
    assert (await names(world, ADMIN))["order_update"] == "PENDING"
    assert "order_update" not in await names(world, world.agent)
    status, refused = await reply(world, redis)
    assert (status, refused["error"]["field"]) == (422, "template"), refused

    await world.standin.onboarding.review_template(
        WABA,
        "order_update",
        "en_US",
        decision,
        reason,
    )
    status, listed = await call(world.api, "GET", f"/v1/channels/{EU.id}/templates", ADMIN)
    (mine,) = [t for t in listed["templates"] if t["name"] == "order_update"]
    assert (mine["status"], mine["reason"]) == (decision, reason)
    offered = "order_update" in await names(world, world.agent)
    assert offered == (decision == "APPROVED")
    status, answer = await reply(world, redis)
    assert status == (202 if decision == "APPROVED" else 422), answer


async def test_a_template_is_refused_by_its_broken_part_or_by_meta_and_deleted_there_too(
    world: World,
) -> None:
    broken = {**ORDER_UPDATE, "body": {"text": "Hi {{1}}", "examples": []}}
    status, answer = await world.admin("POST", f"/v1/channels/{EU.id}/templates", broken)
    assert (status, answer["error"]["field"]) == (422, "body.examples")
    assert world.requests(f"/{WABA}/message_templates") == []
    status, created = await world.admin("POST", f"/v1/channels/{EU.id}/templates", ORDER_UPDATE)
    assert status == 201, created
    status, again = await world.admin("POST", f"/v1/channels/{EU.id}/templates", ORDER_UPDATE)
    assert (status, again["error"]["code"]) == (409, "already_exists")
    await world.admin("DELETE", f"/v1/channels/{EU.id}/templates/order_update/en_US")
    (deleted,) = [
        r for r in world.requests(f"/{WABA}/message_templates") if r["method"] == "DELETE"
    ]
    assert deleted["query"] == {"name": "order_update", "hsm_id": created["id"]}
    assert "order_update" not in await names(world, ADMIN)
    # Re-sync: the account's list (now without it) is the channel's.
    status, synced = await world.admin("POST", f"/v1/channels/{EU.id}/templates/sync")
    assert status == 200, synced
    assert "order_update" not in await names(world, ADMIN)


async def test_template_and_profile_changes_are_for_admins_only(world: World) -> None:
    supervisor = await user_with_role(world.api, "sam", EU.id, "supervisor")
    for method, path, body in [
        ("POST", f"/v1/channels/{EU.id}/templates", ORDER_UPDATE),
        ("PATCH", f"/v1/channels/{EU.id}/profile", {"about": "Hi"}),
        ("POST", f"/v1/channels/{EU.id}/standing/refresh", None),
    ]:
        status, answer = await call(world.api, method, path, supervisor, body)
        assert (status, answer["error"]["code"]) == (403, "forbidden"), (method, path)
    assert world.standin.onboarding.requests == []
