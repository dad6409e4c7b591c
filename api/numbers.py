"""New numbers: registering a channel with Meta (admins)."""

import contextlib
from collections.abc import Callable

from aiohttp import web

from api import errors
from api.access import require_admin
from api.appkeys import CLOCK, GRAPH, ON_CHANNEL_ACTIVE, REDIS
from api.body import read_body
from api.meta import from_meta
from api.responses import json
from api.schemas import (
    Code,
    CodeRequest,
    NewChannel,
    Pin,
    RegistrationOut,
    registration_out,
)
from api.spec import Endpoint
from parley import registration
from parley.channels import ChannelSettings, clean_display_name
from parley.graph import GraphError
from parley.registration import LifecycleError, Registration, Status, active_channel
from store import registrations, standing
from store.channels import is_channel, save_channel_settings

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
    await from_meta(
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
        raise errors.graph_failed(error) from None
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
    await from_meta(graph.register(record.channel, record.access_token, body.pin))
    client = request.config_dict[REDIS]
    await registrations.save(client, changed)
    await save_channel_settings(
        client, record.channel, ChannelSettings(display_name=record.display_name)
    )
    request.config_dict[ON_CHANNEL_ACTIVE](active_channel(changed))
    # Meta's name review and quality webhooks name the number by its display phone
    # number: reading its standing now teaches Parley which channel that is. Meta not
    # answering is no reason to fail a registration that is done (the engine reads it
    # again on its schedule).
    with contextlib.suppress(GraphError):
        fields = await graph.number_fields(record.channel, record.access_token)
        await standing.save_read(client, record.channel, fields, now)
    return json(registration_out(changed))


def _step(rule: Callable[..., Registration], *args: object) -> Registration:
    """Run a lifecycle rule; 409 naming why the step is out of turn or too late."""
    try:
        return rule(*args)
    except LifecycleError as error:
        raise errors.conflict(error.code, error.message) from None


REG = "/v1/channels/{channel}/registration"
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
]  # fmt: skip
