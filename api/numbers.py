"""New numbers and message templates: registering a channel with Meta (admins), and
the templates that may be sent outside the 24-hour window."""

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from api import errors
from api.access import on_channel, require_admin
from api.appkeys import CLOCK, GRAPH, ON_CHANNEL_ACTIVE, REDIS
from api.body import read_body
from api.responses import json
from api.schemas import (
    Code,
    CodeRequest,
    NewChannel,
    Pin,
    RegistrationOut,
    TemplateIn,
    TemplateList,
    TemplateOut,
    registration_out,
    template_out,
)
from api.spec import Endpoint
from assign import Action
from parley import registration
from parley.channels import ChannelSettings, clean_display_name
from parley.graph import GraphError
from parley.registration import LifecycleError, Registration, Status, active_channel
from store import registrations
from store.channels import is_channel, save_channel_settings
from store.templates import Template, delete_template, save_template, templates

# Meta's error for a verification code that does not match.
WRONG_CODE = 136025


async def create_channel(request: web.Request) -> web.Response:
    """A number to register: pending until Meta has verified and registered it."""
    await require_admin(request)
    body = await read_body(request, NewChannel)
    try:
        display_name = clean_display_name(body.display_name)
    except ValueError as error:
        raise errors.invalid("display_name", str(error)) from None
    client = request.config_dict[REDIS]
    record = Registration(
        channel=body.id,
        display_name=display_name,
        status=Status.PENDING,
        created_at=request.config_dict[CLOCK](),
        access_token=body.access_token,
        app_secret=body.app_secret,
        verify_token=body.verify_token,
    )
    if await is_channel(client, body.id) or not await registrations.create(client, record):
        raise errors.conflict("already_exists", f"channel {body.id} already exists")
    return json(registration_out(record), status=201)


async def _record(request: web.Request) -> Registration:
    await require_admin(request)
    channel = request.match_info["channel"]
    record = await registrations.load(request.config_dict[REDIS], channel)
    if record is None:
        raise errors.not_found(f"no registration for channel {channel}")
    return record


async def get_registration(request: web.Request) -> web.Response:
    return json(registration_out(await _record(request)))


async def request_code(request: web.Request) -> web.Response:
    record = await _record(request)
    body = await read_body(request, CodeRequest)
    now = request.config_dict[CLOCK]()
    changed = _step(registration.code_requested, record, body.method, now)
    await _graph(
        request.config_dict[GRAPH].request_code(
            record.channel, record.access_token, body.method, body.language
        )
    )
    await registrations.save(request.config_dict[REDIS], changed)
    return json(registration_out(changed))


async def verify_code(request: web.Request) -> web.Response:
    """The 6-digit code Meta sent, within 10 minutes of asking for it."""
    record = await _record(request)
    body = await read_body(request, Code)
    now = request.config_dict[CLOCK]()
    changed = _step(registration.verified, record, now)
    try:
        await request.config_dict[GRAPH].verify_code(record.channel, record.access_token, body.code)
    except GraphError as error:
        if error.code == WRONG_CODE:
            raise errors.ApiError(
                422, "wrong_code", "that is not the code Meta sent", "code"
            ) from None
        raise _graph_failed(error) from None
    await registrations.save(request.config_dict[REDIS], changed)
    return json(registration_out(changed))


async def register(request: web.Request) -> web.Response:
    """Register the verified number for the Cloud API: the channel becomes active, and
    whoever mounted the API hears of it (the receiver then takes its webhooks)."""
    record = await _record(request)
    body = await read_body(request, Pin)
    now = request.config_dict[CLOCK]()
    changed = _step(registration.registered, record, now)
    graph = request.config_dict[GRAPH]
    await _graph(graph.register(record.channel, record.access_token, body.pin))
    client = request.config_dict[REDIS]
    await registrations.save(client, changed)
    await save_channel_settings(
        client, record.channel, ChannelSettings(display_name=record.display_name)
    )
    request.config_dict[ON_CHANNEL_ACTIVE](active_channel(changed))
    return json(registration_out(changed))


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
    found = await templates(request.config_dict[REDIS], channel)
    return json(TemplateList(templates=[template_out(one) for one in found]))


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
        updated_at=request.config_dict[CLOCK](),
    )
    await save_template(request.config_dict[REDIS], channel, record)
    return json(template_out(record))


async def remove_template(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    name, language = _template_id(request)
    if not await delete_template(request.config_dict[REDIS], channel, name, language):
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
             TemplateOut, body=TemplateIn, errors=(403, 404), tag="templates"),
    Endpoint("DELETE", TEMPLATE, remove_template, "Remove a template (admins)", 204,
             errors=(403, 404), tag="templates"),
]  # fmt: skip
