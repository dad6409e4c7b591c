"""New numbers and message templates: registering a channel with Meta (admins), and
the templates that may be sent outside the 24-hour window."""

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from assign import Action
from ingest.api import errors
from ingest.api.access import on_channel, require_admin
from ingest.api.body import read_body
from ingest.api.models import Body, Name
from ingest.api.reply import json
from ingest.api.spec import Endpoint
from ingest.appkeys import CHANNELS, CLOCK, GRAPH, REDIS
from parley import registration
from parley.channels import Channel, ChannelSettings, PhoneNumberId, clean_display_name
from parley.graph import GraphError
from parley.registration import LifecycleError, Registration, Status
from store import registrations
from store.channels import is_channel, save_channel_settings
from store.templates import Template, delete_template, save_template, templates

# Tokens and secrets travel in HTTP headers: printable ASCII, no spaces.
Secret = Annotated[
    str, msgspec.Meta(pattern=r"^[!-~]{1,1024}$(?!\n)", description="printable ASCII")
]
SixDigits = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$(?!\n)")]
# Meta's error for a verification code that does not match.
WRONG_CODE = 136025


class NewChannel(Body, frozen=True):
    id: PhoneNumberId
    display_name: Name
    access_token: Secret  # the Graph API token for this number
    app_secret: Secret  # signs its webhooks
    verify_token: Secret  # answers Meta's subscription handshake


class RegistrationOut(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    display_name: str
    status: Status
    code_method: str | None
    code_requested_at: float | None
    verified_at: float | None
    registered_at: float | None


class CodeRequest(Body, frozen=True):
    method: Literal["SMS", "VOICE"] = "SMS"
    language: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$(?!\n)")] = "en_US"


class Code(Body, frozen=True):
    code: SixDigits


class Pin(Body, frozen=True):
    pin: SixDigits  # the number's two-step verification PIN


class TemplateIn(Body, frozen=True):
    category: Literal["MARKETING", "UTILITY", "AUTHENTICATION"]
    status: Literal["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"] = "APPROVED"


class TemplateList(msgspec.Struct, frozen=True, kw_only=True):
    templates: list[Template]


def _out(record: Registration) -> RegistrationOut:
    return RegistrationOut(
        channel=record.channel,
        display_name=record.display_name,
        status=record.status,
        code_method=record.code_method,
        code_requested_at=record.code_requested_at,
        verified_at=record.verified_at,
        registered_at=record.registered_at,
    )


async def create_channel(request: web.Request) -> web.Response:
    """A number to register: pending until Meta has verified and registered it."""
    await require_admin(request)
    body = await read_body(request, NewChannel)
    try:
        display_name = clean_display_name(body.display_name)
    except ValueError as error:
        raise errors.invalid("display_name", str(error)) from None
    client = request.app[REDIS]
    record = Registration(
        channel=body.id,
        display_name=display_name,
        status=Status.PENDING,
        created_at=request.app[CLOCK](),
        access_token=body.access_token,
        app_secret=body.app_secret,
        verify_token=body.verify_token,
    )
    if await is_channel(client, body.id) or not await registrations.create(client, record):
        raise errors.conflict("already_exists", f"channel {body.id} already exists")
    return json(_out(record), status=201)


async def _record(request: web.Request) -> Registration:
    await require_admin(request)
    channel = request.match_info["channel"]
    record = await registrations.load(request.app[REDIS], channel)
    if record is None:
        raise errors.not_found(f"no registration for channel {channel}")
    return record


async def get_registration(request: web.Request) -> web.Response:
    return json(_out(await _record(request)))


async def request_code(request: web.Request) -> web.Response:
    record = await _record(request)
    body = await read_body(request, CodeRequest)
    now = request.app[CLOCK]()
    changed = _step(registration.code_requested, record, body.method, now)
    await _graph(
        request.app[GRAPH].request_code(
            record.channel, record.access_token, body.method, body.language
        )
    )
    await registrations.save(request.app[REDIS], changed)
    return json(_out(changed))


async def verify_code(request: web.Request) -> web.Response:
    """The 6-digit code Meta sent, within 10 minutes of asking for it."""
    record = await _record(request)
    body = await read_body(request, Code)
    now = request.app[CLOCK]()
    changed = _step(registration.verified, record, now)
    try:
        await request.app[GRAPH].verify_code(record.channel, record.access_token, body.code)
    except GraphError as error:
        if error.code == WRONG_CODE:
            raise errors.ApiError(
                422, "wrong_code", "that is not the code Meta sent", "code"
            ) from None
        raise _graph_failed(error) from None
    await registrations.save(request.app[REDIS], changed)
    return json(_out(changed))


async def register(request: web.Request) -> web.Response:
    """Register the verified number for the Cloud API: the channel becomes active."""
    record = await _record(request)
    body = await read_body(request, Pin)
    now = request.app[CLOCK]()
    changed = _step(registration.registered, record, now)
    await _graph(request.app[GRAPH].register(record.channel, record.access_token, body.pin))
    client = request.app[REDIS]
    await registrations.save(client, changed)
    await save_channel_settings(
        client, record.channel, ChannelSettings(display_name=record.display_name)
    )
    request.app[CHANNELS].add(active_channel(changed))
    return json(_out(changed))


def active_channel(record: Registration) -> Channel:
    return Channel(
        id=record.channel,
        app_secret=record.app_secret,
        verify_token=record.verify_token,
        access_token=record.access_token,
        settings=ChannelSettings(display_name=record.display_name),
    )


def _step(rule: Callable[..., Registration], *args: object) -> Registration:
    """Run a lifecycle rule; 409 naming why the step is out of turn or too late."""
    try:
        return rule(*args)
    except LifecycleError as error:
        raise errors.conflict(error.code, error.message) from None


async def _graph(call: Awaitable[None]) -> None:
    try:
        await call
    except GraphError as error:
        raise _graph_failed(error) from None


def _graph_failed(error: GraphError) -> errors.ApiError:
    """Meta said no (4xx: the number, token or request is wrong): 422; Meta did not
    answer, or failed (timeouts, 5xx): 502, try again."""
    if error.status is not None and error.status < 500:
        return errors.ApiError(422, "graph_refused", f"Meta refused: {error}")
    return errors.ApiError(502, "graph_unavailable", f"the Graph API failed: {error}")


# Meta's template names: lowercase letters, digits and underscores; languages like
# "en_US". Neither can hold the ":" that joins them in the templates hash.
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")


def _template_id(request: web.Request) -> tuple[str, str]:
    name, language = request.match_info["name"], request.match_info["language"]
    if not _TEMPLATE_NAME.fullmatch(name):
        raise errors.bad_parameter("name", "lowercase letters, digits and underscores")
    if not _LANGUAGE.fullmatch(language):
        raise errors.bad_parameter("language", 'a language code like "en" or "en_US"')
    return name, language


async def list_templates(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.SEE)
    return json(TemplateList(templates=await templates(request.app[REDIS], channel)))


async def put_template(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    body = await read_body(request, TemplateIn)
    name, language = _template_id(request)
    record = Template(
        name=name,
        language=language,
        category=body.category,
        status=body.status,
        updated_at=request.app[CLOCK](),
    )
    await save_template(request.app[REDIS], channel, record)
    return json(record)


async def remove_template(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    name, language = _template_id(request)
    if not await delete_template(request.app[REDIS], channel, name, language):
        raise errors.not_found(f"no template {name} ({language})")
    return web.Response(status=204)


REG = "/v1/channels/{channel}/registration"
TEMPLATE = "/v1/channels/{channel}/templates/{name}/{language}"
ENDPOINTS = [
    Endpoint("POST", "/v1/channels", create_channel,
             "Add a number to register as a channel (admins); it starts pending", 201,
             RegistrationOut, body=NewChannel, errors=(403, 409), tag="registration"),
    Endpoint("GET", REG, get_registration, "Where a number's registration stands (admins)",
             200, RegistrationOut, errors=(403, 404), tag="registration"),
    Endpoint("POST", f"{REG}/request_code", request_code,
             "Have Meta send a 6-digit code by SMS or voice", 200, RegistrationOut,
             body=CodeRequest, errors=(403, 404, 409, 502), tag="registration"),
    Endpoint("POST", f"{REG}/verify_code", verify_code,
             "Submit the code (valid 10 minutes)", 200, RegistrationOut, body=Code,
             errors=(403, 404, 409, 502), tag="registration"),
    Endpoint("POST", f"{REG}/register", register,
             "Register the verified number: the channel becomes active", 200,
             RegistrationOut, body=Pin, errors=(403, 404, 409, 502), tag="registration"),
    Endpoint("GET", "/v1/channels/{channel}/templates", list_templates,
             "The channel's message templates", 200, TemplateList, errors=(404,),
             tag="templates"),
    Endpoint("PUT", TEMPLATE, put_template, "Register or update a template (admins)", 200,
             Template, body=TemplateIn, errors=(403, 404), tag="templates"),
    Endpoint("DELETE", TEMPLATE, remove_template, "Remove a template (admins)", 204,
             errors=(403, 404), tag="templates"),
]  # fmt: skip
