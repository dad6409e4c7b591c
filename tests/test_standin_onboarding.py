"""The Graph stand-in's onboarding edges over real HTTP: business profiles, resumable
uploads and profile pictures, a number's fields, templates created, reviewed and
deleted, the number controls' webhooks, and the requests log."""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from pytest_aiohttp import AiohttpClient, AiohttpServer

from devstack.graph_standin import Fault, StandIn, create_app
from devstack.standin_onboarding import VERTICALS, NumberUpdate
from ingest.signature import signing_secret
from tests.conftest import EU, US

Client = TestClient[web.Request, web.Application]
NOW = 1_790_000_000.0
WABA = "102290129340398"  # EU's; US has no business account until it creates a template
OTHER_WABA = "311122233344455"
APP = "1234567890"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
SECRETS = [EU.app_secret, US.app_secret]
# Meta's limits on a profile's texts (WhatsApp Business Profile reference).
TEXT_LIMITS = {"about": (1, 139), "address": (0, 256), "description": (0, 512)}


class Hooks:
    """A webhook receiver: every body and its X-Hub-Signature-256."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str | None]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((await request.read(), request.headers.get("X-Hub-Signature-256")))
        return web.Response(text="ok")

    def payloads(self, secret: str) -> list[dict[str, Any]]:
        """The bodies received, each checked to be signed with `secret`."""
        for body, header in self.calls:
            assert signing_secret(body, header, SECRETS) == secret
        return [json.loads(body) for body, _ in self.calls]


@pytest.fixture
async def hooks(aiohttp_server: AiohttpServer) -> AsyncIterator[Hooks]:
    hooks = Hooks()
    app = web.Application()
    app.router.add_post("/webhooks/whatsapp", hooks.handle)
    server = await aiohttp_server(app)
    hooks.url = str(server.make_url("/webhooks/whatsapp"))
    yield hooks


@pytest.fixture
def standin(hooks: Hooks) -> StandIn:
    return StandIn(
        {EU.id: EU.access_token, US.id: US.access_token},
        app_secrets={EU.id: EU.app_secret, US.id: US.app_secret},
        wabas={EU.id: WABA},
        clock=lambda: NOW,
        webhook_url=hooks.url,
        verified_names={EU.id: "Support EU"},
    )


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, standin: StandIn) -> Client:
    return await aiohttp_client(create_app(standin))


def bearer(token: str = EU.access_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def oauth(token: str = EU.access_token) -> dict[str, str]:
    return {"Authorization": f"OAuth {token}"}


async def refusal(response: Any, code: int = 100, status: int = 400) -> dict[str, Any]:
    """Meta's error object of a refused call, checked in Meta's shape."""
    assert response.status == status, await response.text()
    error: dict[str, Any] = (await response.json())["error"]
    assert error["code"] == code and error["type"] == "OAuthException"
    assert error["message"] and error["fbtrace_id"]
    return error


def details(error: dict[str, Any]) -> str:
    return str(error["error_data"]["details"])


async def set_profile(client: Client, prefix: str = "/v21.0", **fields: Any) -> Any:
    body = {"messaging_product": "whatsapp", **fields}
    return await client.post(
        f"{prefix}/{EU.id}/whatsapp_business_profile", json=body, headers=bearer()
    )


async def get_profile(client: Client, fields: str | None = None) -> dict[str, Any]:
    query = {"fields": fields} if fields else {}
    response = await client.get(
        f"/v21.0/{EU.id}/whatsapp_business_profile", params=query, headers=bearer()
    )
    assert response.status == 200, await response.text()
    [data] = (await response.json())["data"]
    assert isinstance(data, dict)
    return data


# 1. The business profile


@pytest.mark.parametrize("prefix", ["", "/v21.0"])
async def test_a_profile_is_set_and_shown_with_the_fields_asked_for(
    client: Client, prefix: str
) -> None:
    assert await get_profile(client) == {"messaging_product": "whatsapp"}
    fields = {
        "about": "We answer within the hour",
        "address": "1 Hacker Way, Menlo Park",
        "description": "Plants and pots",
        "email": "help@example.com",
        "websites": ["https://example.com", "http://example.org/shop"],
        "vertical": "RETAIL",
    }
    response = await set_profile(client, prefix, **fields)
    assert response.status == 200 and await response.json() == {"success": True}
    assert await get_profile(client) == {"messaging_product": "whatsapp", **fields}
    assert await get_profile(client, "about,websites") == {
        "messaging_product": "whatsapp",
        "about": fields["about"],
        "websites": fields["websites"],
    }
    assert await get_profile(client, "profile_picture_url") == {"messaging_product": "whatsapp"}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"messaging_product": "sms"}, "messaging_product"),
        ({"about": ""}, "about"),
        ({"about": "x" * 140}, "about"),
        ({"about": 7}, "about"),
        ({"address": "x" * 257}, "address"),
        ({"description": "x" * 513}, "description"),
        ({"email": "help@" + "x" * 120 + ".com"}, "email"),
        ({"email": "not an address"}, "email"),
        ({"websites": "https://example.com"}, "websites"),
        ({"websites": ["https://a.example", "https://b.example", "https://c.example"]}, "websites"),
        ({"websites": ["ftp://example.com"]}, "websites"),
        ({"websites": ["https://" + "x" * 249]}, "websites"),
        ({"vertical": "BANANAS"}, "vertical"),
        ({"profile_picture_handle": "4::aW1hZ2UvcG5n:never-issued"}, "profile_picture_handle"),
        ({"profile_picture_url": "https://example.com/me.png"}, "profile_picture_url"),
    ],
)
async def test_a_profile_field_past_metas_limits_is_refused_and_nothing_applied(
    client: Client, fields: dict[str, Any], named: str
) -> None:
    response = await set_profile(client, **{"address": "would be applied", **fields})
    assert named in details(await refusal(response))
    assert await get_profile(client) == {"messaging_product": "whatsapp"}


@hyp_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.sampled_from(sorted(TEXT_LIMITS)), value=st.text(max_size=600))
async def test_any_profile_text_is_taken_within_its_limits_and_refused_past_them(
    client: Client, name: str, value: str
) -> None:
    fewest, most = TEXT_LIMITS[name]
    response = await set_profile(client, **{name: value})
    if fewest <= len(value) <= most:
        assert response.status == 200, await response.text()
        assert (await get_profile(client, name))[name] == value
    else:
        assert name in details(await refusal(response))


@hyp_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    email=st.one_of(st.text(max_size=140), st.emails()),
    websites=st.lists(st.one_of(st.text(max_size=20), st.just("https://example.com")), max_size=3),
)
async def test_any_email_or_websites_are_taken_or_refused_naming_the_field(
    client: Client, email: str, websites: list[str]
) -> None:
    fields: dict[str, Any] = {"email": email, "websites": websites}
    for name, value in fields.items():
        response = await set_profile(client, **{name: value})
        if response.status != 200:
            assert name in details(await refusal(response))
        else:
            assert (await get_profile(client, name))[name] == value


async def test_every_documented_vertical_is_taken(client: Client) -> None:
    for vertical in VERTICALS:
        assert (await set_profile(client, vertical=vertical)).status == 200
        assert (await get_profile(client, "vertical"))["vertical"] == vertical


# 2. Resumable uploads and the profile picture


async def start_upload(client: Client, data: bytes, file_type: str = "image/png") -> str:
    query = {"file_name": "logo.png", "file_length": str(len(data)), "file_type": file_type}
    response = await client.post(f"/v21.0/{APP}/uploads", params=query, headers=bearer())
    assert response.status == 200, await response.text()
    upload_id: str = (await response.json())["id"]
    return upload_id


async def send_bytes(client: Client, upload_id: str, data: bytes, offset: int) -> Any:
    # The id carries its own "?sig=": it goes into the URL as it is, never encoded.
    return await client.post(
        f"/v21.0/{upload_id}", data=data, headers={**oauth(), "file_offset": str(offset)}
    )


async def upload(client: Client, data: bytes, file_type: str = "image/png") -> str:
    """A whole upload in one chunk; its handle."""
    response = await send_bytes(client, await start_upload(client, data, file_type), data, 0)
    assert response.status == 200, await response.text()
    handle: str = (await response.json())["h"]
    return handle


async def test_an_upload_in_one_chunk_gives_a_handle(client: Client) -> None:
    upload_id = await start_upload(client, PNG)
    assert upload_id.startswith("upload:") and "?sig=" in upload_id
    status = await client.get(f"/v21.0/{upload_id}", headers=oauth())
    assert await status.json() == {"id": upload_id, "file_offset": 0}
    response = await send_bytes(client, upload_id, PNG, 0)
    assert response.status == 200
    assert set(await response.json()) == {"h"}
    status = await client.get(f"/{upload_id}", headers=bearer())
    assert await status.json() == {"id": upload_id, "file_offset": len(PNG)}


async def test_an_upload_resumes_from_the_bytes_received_and_refuses_another_offset(
    client: Client,
) -> None:
    upload_id = await start_upload(client, PNG)
    half = len(PNG) // 2
    first = await send_bytes(client, upload_id, PNG[:half], 0)
    assert await first.json() == {"file_offset": half}
    assert "file_offset" in details(await refusal(await send_bytes(client, upload_id, PNG, 0)))
    status = await client.get(f"/v21.0/{upload_id}", headers=oauth())
    assert (await status.json())["file_offset"] == half
    too_much = await send_bytes(client, upload_id, PNG[half:] + b"x", half)
    assert "file_length" in details(await refusal(too_much))
    rest = await send_bytes(client, upload_id, PNG[half:], half)
    assert set(await rest.json()) == {"h"}


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"file_length": "10", "file_type": "image/gif"}, "file_type"),
        ({"file_length": "10"}, "file_type"),
        ({"file_length": "0", "file_type": "image/png"}, "file_length"),
        ({"file_length": "-3", "file_type": "image/png"}, "file_length"),
        ({"file_length": "ten", "file_type": "image/png"}, "file_length"),
        ({"file_type": "image/png"}, "file_length"),
    ],
)
async def test_an_upload_session_needs_a_documented_type_and_a_length(
    client: Client, query: dict[str, str], named: str
) -> None:
    response = await client.post(f"/v21.0/{APP}/uploads", params=query, headers=bearer())
    assert named in details(await refusal(response))


@pytest.mark.parametrize(
    "headers",
    [bearer(), {"Authorization": f"OAuth {'x' * 20}"}, {}, {"Authorization": EU.access_token}],
)
async def test_upload_bytes_need_a_known_token_under_the_oauth_scheme(
    client: Client, headers: dict[str, str]
) -> None:
    upload_id = await start_upload(client, PNG)
    response = await client.post(
        f"/v21.0/{upload_id}", data=PNG, headers={**headers, "file_offset": "0"}
    )
    await refusal(response, code=190, status=401)


async def test_an_upload_id_without_its_signature_is_refused(client: Client) -> None:
    upload_id = await start_upload(client, PNG)
    key = upload_id.partition("?")[0]
    await refusal(await send_bytes(client, key, PNG, 0), code=104)
    await refusal(await client.post("/v21.0/upload:bm9uZQ==?sig=AR", headers=oauth()))


async def test_a_picture_handle_becomes_a_profile_picture_url_serving_the_bytes(
    client: Client,
) -> None:
    handle = await upload(client, PNG)
    assert (await set_profile(client, profile_picture_handle=handle)).status == 200
    url = (await get_profile(client, "profile_picture_url"))["profile_picture_url"]
    assert url.startswith(str(client.make_url("/")))
    async with client.session.get(url) as picture:  # no token, as Meta's picture URLs
        assert picture.status == 200 and picture.content_type == "image/png"
        assert await picture.read() == PNG


async def test_only_an_image_upload_can_be_a_profile_picture(client: Client) -> None:
    handle = await upload(client, b"%PDF-1.7 menu", "application/pdf")
    response = await set_profile(client, profile_picture_handle=handle)
    assert "profile_picture_handle" in details(await refusal(response))


# 3. A phone number's fields, and media ids as before


async def test_a_numbers_fields_are_metas_defaults_for_a_new_number(client: Client) -> None:
    response = await client.get(f"/v21.0/{EU.id}", headers=bearer())
    assert await response.json() == {
        "id": EU.id,
        "verified_name": "Support EU",
        "display_phone_number": "+1 555-224-2922",  # "+1 555-" and the id's last 7 digits
        "name_status": "APPROVED",
        "new_name_status": "NONE",
        "quality_rating": "GREEN",
        "messaging_limit_tier": "TIER_1K",
        "is_official_business_account": False,
        "official_business_account": {"oba_status": "NOT_STARTED"},
    }
    query = {"fields": "verified_name,official_business_account"}
    response = await client.get(f"/{US.id}", params=query, headers=bearer(US.access_token))
    assert await response.json() == {
        "id": US.id,
        "verified_name": "Parley demo",
        "official_business_account": {"oba_status": "NOT_STARTED"},
    }


async def test_a_numbers_fields_need_its_own_token_and_known_fields(client: Client) -> None:
    await refusal(await client.get(f"/v21.0/{EU.id}", headers=bearer(US.access_token)))
    await refusal(await client.get(f"/v21.0/{EU.id}", headers=bearer("nope")), 190, 401)
    response = await client.get(f"/v21.0/{EU.id}", params={"fields": "pin"}, headers=bearer())
    assert "pin" in details(await refusal(response))


async def test_a_media_id_is_still_served_by_get_id(client: Client, standin: StandIn) -> None:
    media = standin.seed_media("1013859600285441", PNG, "image/png", phone_number_id=EU.id)
    response = await client.get(f"/v21.0/{media.id}", headers=bearer())
    answer = await response.json()
    assert (answer["id"], answer["mime_type"], answer["file_size"]) == (
        media.id,
        "image/png",
        len(PNG),
    )
    await refusal(await client.get("/v21.0/999999999999999", headers=bearer()))


# 4. Templates created and deleted


def template(name: str = "order_update", language: str = "en_US", **changes: Any) -> dict[str, Any]:
    """A valid UTILITY template with two body variables and their examples."""
    body = {
        "type": "BODY",
        "text": "Hi {{1}}, order {{2}} has shipped.",
        "example": {"body_text": [["Pablo", "860198-230332"]]},
    }
    return {
        "name": name,
        "language": language,
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Your order"},
            body,
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"}]},
        ],
        **changes,
    }


async def create(client: Client, body: dict[str, Any], token: str = EU.access_token) -> Any:
    return await client.post(f"/v21.0/{WABA}/message_templates", json=body, headers=bearer(token))


async def listed(client: Client, waba: str = WABA, token: str = EU.access_token) -> list[Any]:
    response = await client.get(f"/v21.0/{waba}/message_templates", headers=bearer(token))
    assert response.status == 200, await response.text()
    data: list[Any] = (await response.json())["data"]
    return data


async def test_a_created_template_is_listed_pending(client: Client) -> None:
    response = await create(client, template())
    answer = await response.json()
    assert set(answer) == {"id", "status", "category"} and answer["id"].isdigit()
    assert (answer["status"], answer["category"]) == ("PENDING", "UTILITY")
    [shown] = await listed(client)
    assert (shown["id"], shown["name"], shown["status"]) == (
        answer["id"],
        "order_update",
        "PENDING",
    )
    assert shown["components"] == template()["components"]


def _body(text: str, example: Any = None) -> list[dict[str, Any]]:
    part: dict[str, Any] = {"type": "BODY", "text": text}
    if example is not None:
        part["example"] = example
    return [part]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"name": "Order Update"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 513}, "name"),
        ({"category": "TRANSACTIONAL"}, "category"),
        ({"components": [{"type": "FOOTER", "text": "Bye"}]}, "BODY"),
        ({"components": _body("x" * 1025)}, "BODY"),
        (
            {"components": [{"type": "HEADER", "format": "TEXT", "text": "x" * 61}, *_body("Hi")]},
            "HEADER",
        ),
        ({"components": [*_body("Hi"), {"type": "FOOTER", "text": "x" * 61}]}, "FOOTER"),
        ({"components": _body("Hi {{1}} and {{3}}", {"body_text": [["a", "b"]]})}, "variables"),
        ({"components": _body("Hi {{2}}", {"body_text": [["a"]]})}, "variables"),
        ({"components": _body("Hi {{1}}")}, "body_text"),
        ({"components": _body("Hi {{1}} {{2}}", {"body_text": [["a"]]})}, "body_text"),
        (
            {
                "components": [
                    *_body("Hi"),
                    {
                        "type": "BUTTONS",
                        "buttons": [{"type": "QUICK_REPLY", "text": str(n)} for n in range(11)],
                    },
                ]
            },
            "buttons",
        ),
    ],
)
async def test_a_template_past_metas_rules_is_refused(
    client: Client, changes: dict[str, Any], named: str
) -> None:
    assert named in details(await refusal(await create(client, template(**changes))))
    assert await listed(client) == []


async def test_the_same_name_in_the_same_language_is_2388024(client: Client) -> None:
    assert (await create(client, template())).status == 200
    error = await refusal(await create(client, template()))
    assert error["error_subcode"] == 2388024
    assert error["error_user_title"] == "Content in this language already exists"
    assert (await create(client, template(language="pt_BR"))).status == 200


async def test_a_template_is_deleted_in_one_language_or_all(client: Client) -> None:
    for language in ("en_US", "pt_BR", "es_ES"):
        assert (await create(client, template(language=language))).status == 200
    by_language = {shown["language"]: shown["id"] for shown in await listed(client)}
    query = {"name": "order_update", "hsm_id": by_language["pt_BR"]}
    response = await client.delete(
        f"/v21.0/{WABA}/message_templates", params=query, headers=bearer()
    )
    assert await response.json() == {"success": True}
    assert sorted(shown["language"] for shown in await listed(client)) == ["en_US", "es_ES"]
    query = {"name": "order_update"}
    response = await client.delete(f"/{WABA}/message_templates", params=query, headers=bearer())
    assert response.status == 200 and await listed(client) == []
    response = await client.delete(f"/{WABA}/message_templates", params=query, headers=bearer())
    assert "order_update" in details(await refusal(response))


async def test_a_number_without_an_account_joins_the_one_it_creates_templates_on(
    client: Client, standin: StandIn
) -> None:
    response = await client.post(
        f"/v21.0/{OTHER_WABA}/message_templates",
        json=template(),
        headers=bearer(US.access_token),
    )
    assert response.status == 200
    assert standin.wabas[US.id] == OTHER_WABA
    assert [shown["name"] for shown in await listed(client, OTHER_WABA, US.access_token)] == [
        "order_update"
    ]
    # EU belongs to another account: Meta's "does not exist" for it.
    response = await client.post(
        f"/v21.0/{OTHER_WABA}/message_templates", json=template("other"), headers=bearer()
    )
    await refusal(response)


# 5. Controls: a template's review, a number's decisions


async def test_a_review_posts_a_signed_status_update_and_the_list_shows_it(
    client: Client, standin: StandIn, hooks: Hooks
) -> None:
    template_id = (await (await create(client, template())).json())["id"]
    response = await client.post(
        f"/_standin/templates/{WABA}/order_update/en_US/review", json={"status": "APPROVED"}
    )
    assert await response.json() == {"posted": 200}
    assert [shown["status"] for shown in await listed(client)] == ["APPROVED"]
    posted = await standin.onboarding.review_template(
        WABA, "order_update", "en_US", "REJECTED", "INCORRECT_CATEGORY"
    )
    assert posted == 200
    approved, rejected = hooks.payloads(EU.app_secret)  # the secret of WABA's number
    assert approved == {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA,
                "time": int(NOW),
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {
                            "event": "APPROVED",
                            "message_template_id": int(template_id),
                            "message_template_name": "order_update",
                            "message_template_language": "en_US",
                            "reason": "NONE",
                            "message_template_category": "UTILITY",
                        },
                    }
                ],
            }
        ],
    }
    value = rejected["entry"][0]["changes"][0]["value"]
    assert (value["event"], value["reason"]) == ("REJECTED", "INCORRECT_CATEGORY")


async def test_a_number_registered_at_runtime_is_signed_for_with_the_first_secret(
    client: Client, hooks: Hooks
) -> None:
    new_id, new_token = "109876543210987", "new-number-token"
    # Its first call makes the token its own, as for numbers registered through Parley.
    response = await client.get(
        f"/v21.0/{new_id}/whatsapp_business_profile", headers=bearer(new_token)
    )
    assert response.status == 200
    response = await client.post(
        f"/v21.0/{OTHER_WABA}/message_templates", json=template(), headers=bearer(new_token)
    )
    assert response.status == 200
    review = await client.post(
        f"/_standin/templates/{OTHER_WABA}/order_update/en_US/review", json={"status": "PAUSED"}
    )
    assert await review.json() == {"posted": 200}
    [payload] = hooks.payloads(EU.app_secret)  # the first secret the stand-in knows
    assert payload["entry"][0]["id"] == OTHER_WABA


async def test_a_review_that_cannot_be_told_changes_nothing(
    client: Client, standin: StandIn
) -> None:
    assert (await create(client, template())).status == 200
    standin.webhook_url = None
    review = {"status": "APPROVED"}
    response = await client.post(
        f"/_standin/templates/{WABA}/order_update/en_US/review", json=review
    )
    assert response.status == 409
    assert [shown["status"] for shown in await listed(client)] == ["PENDING"]
    response = await client.post(f"/_standin/templates/{WABA}/nope/en_US/review", json=review)
    assert response.status == 404
    response = await client.post(
        f"/_standin/templates/{WABA}/order_update/en_US/review", json={"status": "MAYBE"}
    )
    assert response.status == 400


async def test_a_number_decision_posts_its_name_and_quality_webhooks(
    client: Client, hooks: Hooks
) -> None:
    update = {
        "name_decision": "APPROVED",
        "requested_verified_name": "Lucky Shrub",
        "quality_event": "FLAGGED",
        "current_limit": "TIER_250",
    }
    response = await client.post(f"/_standin/numbers/{EU.id}", json=update)
    answer = await response.json()
    assert answer["posted"] == {"phone_number_name_update": 200, "phone_number_quality_update": 200}
    record = answer["record"]
    assert (record["verified_name"], record["name_status"]) == ("Lucky Shrub", "APPROVED")
    assert (record["quality_rating"], record["messaging_limit_tier"]) == ("RED", "TIER_250")
    name, quality = hooks.payloads(EU.app_secret)
    for payload in (name, quality):
        assert payload["object"] == "whatsapp_business_account"
        assert (payload["entry"][0]["id"], payload["entry"][0]["time"]) == (WABA, int(NOW))
    assert name["entry"][0]["changes"] == [
        {
            "field": "phone_number_name_update",
            "value": {
                "display_phone_number": "15552242922",
                "decision": "APPROVED",
                "requested_verified_name": "Lucky Shrub",
                "rejection_reason": "NONE",
            },
        }
    ]
    assert quality["entry"][0]["changes"] == [
        {
            "field": "phone_number_quality_update",
            "value": {
                "display_phone_number": "15552242922",
                "event": "FLAGGED",
                "current_limit": "TIER_250",
                "old_limit": "TIER_1K",
                "max_daily_conversations_per_business": "TIER_250",
            },
        }
    ]
    fields = await (await client.get(f"/v21.0/{EU.id}", headers=bearer())).json()
    assert (fields["verified_name"], fields["quality_rating"]) == ("Lucky Shrub", "RED")


@pytest.mark.parametrize(
    ("decision", "name_status"),
    [("REJECTED", "DECLINED"), ("PENDING", "PENDING_REVIEW"), ("DEFERRED", "APPROVED")],
)
async def test_a_name_decision_sets_the_name_status(
    client: Client, hooks: Hooks, decision: str, name_status: str
) -> None:
    update = {"name_decision": decision, "requested_verified_name": "Lucky Shrub"}
    if decision == "REJECTED":
        update["rejection_reason"] = "NAME_FORMAT_UNACCEPTABLE"
    answer = await (await client.post(f"/_standin/numbers/{EU.id}", json=update)).json()
    assert answer["record"]["name_status"] == name_status
    assert answer["record"]["verified_name"] == "Support EU"  # only APPROVED renames
    [payload] = hooks.payloads(EU.app_secret)
    value = payload["entry"][0]["changes"][0]["value"]
    assert value["rejection_reason"] == update.get("rejection_reason", "NONE")


async def test_a_limit_change_alone_says_upgrade_or_downgrade(
    client: Client, standin: StandIn, hooks: Hooks
) -> None:
    assert await standin.onboarding.update_number(EU.id, NumberUpdate(current_limit="TIER_10K"))
    await standin.onboarding.update_number(EU.id, NumberUpdate(current_limit="TIER_2K"))
    events = [
        payload["entry"][0]["changes"][0]["value"] for payload in hooks.payloads(EU.app_secret)
    ]
    assert [(v["event"], v["old_limit"], v["current_limit"]) for v in events] == [
        ("UPGRADE", "TIER_1K", "TIER_10K"),
        ("DOWNGRADE", "TIER_10K", "TIER_2K"),
    ]
    response = await client.post(f"/_standin/numbers/{EU.id}", json={"current_limit": "TIER_2K"})
    assert response.status == 400


async def test_number_controls_without_webhooks_or_an_account(client: Client, hooks: Hooks) -> None:
    response = await client.post(
        f"/_standin/numbers/{EU.id}", json={"quality_rating": "YELLOW", "oba_status": "APPROVED"}
    )
    answer = await response.json()
    assert answer["posted"] == {} and hooks.calls == []
    assert (answer["record"]["quality_rating"], answer["record"]["oba_status"]) == (
        "YELLOW",
        "APPROVED",
    )
    assert answer["record"]["is_official_business_account"] is True
    response = await client.post(f"/_standin/numbers/{US.id}", json={"name_decision": "APPROVED"})
    assert response.status == 409  # US has no business account to post for
    shown = await (await client.get(f"/_standin/numbers/{US.id}")).json()
    assert shown["name_status"] == "APPROVED" and shown["verified_name"] == "Parley demo"
    for bad in ({"quality_rating": "PURPLE"}, {"colour": "RED"}):
        assert (await client.post(f"/_standin/numbers/{EU.id}", json=bad)).status == 400
    assert (await client.post("/_standin/numbers/123", json={})).status == 404


# 6. Faults, tokens and the requests log


async def test_queued_faults_and_token_checks_apply_to_the_onboarding_edges(
    client: Client, standin: StandIn
) -> None:
    standin.fail_next(EU.id, Fault(status=500, code=131000))
    standin.fail_next(WABA, Fault(status=429, code=80007))
    standin.fail_next(APP, Fault(status=503, code=None))
    path = f"/v21.0/{EU.id}/whatsapp_business_profile"
    await refusal(await client.get(path, headers=bearer()), 131000, 500)
    assert (await client.get(path, headers=bearer())).status == 200
    await refusal(await create(client, template()), 80007, 429)
    response = await client.post(f"/v21.0/{APP}/uploads", headers=bearer())
    assert response.status == 503
    await refusal(await client.get(path, headers=bearer("unknown-token")), 190, 401)
    await refusal(await client.get(path, headers=bearer(US.access_token)))
    await refusal(await create(client, template(), token="unknown-token"), 190, 401)


async def test_the_requests_log_shows_each_request_and_never_a_token(client: Client) -> None:
    await set_profile(client, about="Hi")
    await client.get(
        f"/{EU.id}/whatsapp_business_profile",
        params={"fields": "about", "access_token": EU.access_token},
    )
    upload_id = await start_upload(client, PNG)
    await send_bytes(client, upload_id, PNG, 0)
    await client.get(f"/v21.0/{EU.id}", headers={"Authorization": EU.access_token})
    response = await client.get("/_standin/requests")
    text = await response.text()
    for token in (EU.access_token, US.access_token):
        assert token not in text
    logged = json.loads(text)
    key, _, sig = upload_id.partition("?sig=")
    assert logged == [
        {
            "method": "POST",
            "path": f"/{EU.id}/whatsapp_business_profile",
            "query": {},
            "json": {"messaging_product": "whatsapp", "about": "Hi"},
            "bytes": len(json.dumps({"messaging_product": "whatsapp", "about": "Hi"})),
            "headers": {"authorization_scheme": "Bearer"},
        },
        {
            "method": "GET",
            "path": f"/{EU.id}/whatsapp_business_profile",
            "query": {"fields": "about", "access_token": "***"},
            "json": None,
            "bytes": 0,
            "headers": {"authorization_scheme": None},
        },
        {
            "method": "POST",
            "path": f"/{APP}/uploads",
            "query": {
                "file_name": "logo.png",
                "file_length": str(len(PNG)),
                "file_type": "image/png",
            },
            "json": None,
            "bytes": 0,
            "headers": {"authorization_scheme": "Bearer"},
        },
        {
            "method": "POST",
            "path": f"/{key}",
            "query": {"sig": sig},
            "json": None,
            "bytes": len(PNG),
            "headers": {"authorization_scheme": "OAuth", "file_offset": "0"},
        },
        {
            "method": "GET",
            "path": f"/{EU.id}",
            "query": {},
            "json": None,
            "bytes": 0,
            "headers": {"authorization_scheme": "other"},
        },
    ]


async def test_the_profiles_control_shows_every_profile(client: Client) -> None:
    await set_profile(client, about="Hi", vertical="HOTEL")
    response = await client.get("/_standin/profiles")
    assert await response.json() == {EU.id: {"about": "Hi", "vertical": "HOTEL"}}
