"""A channel's WhatsApp business profile and its picture (admins change them;
supervisors may read them): read from and written to the Graph API, Meta's limits
checked first (parley/business_profile.py) so a refusal names the field."""

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from api import errors
from api.access import on_channel
from api.appkeys import GRAPH
from api.body import read_body, read_file
from api.meta import active_token, from_meta, settings_of
from api.responses import json
from api.schemas import Body
from api.spec import Endpoint
from assign import Action
from parley.business_profile import (
    PICTURE_MAX_BYTES,
    BusinessProfile,
    ProfileError,
    check_change,
    check_picture,
)


class ProfilePatch(Body, frozen=True):
    """Only the fields present change; "" clears address, description or email, []
    the websites. Limits: about 1-139 characters, address 256, description 512, email
    128, at most 2 websites (http:// or https://, 256 characters each), vertical one of
    Meta's categories (AUTO, BEAUTY, ..., OTHER)."""

    about: str | UnsetType = UNSET
    address: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    email: str | UnsetType = UNSET
    websites: list[str] | UnsetType = UNSET
    vertical: str | UnsetType = UNSET


async def get_profile(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.REPORTS)
    token = active_token(request, channel)
    return json(await from_meta(request.config_dict[GRAPH].business_profile(channel, token)))


async def patch_profile(request: web.Request) -> web.Response:
    """The fields given go to Meta, all or none; the profile as Meta has it after."""
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    patch = await read_body(request, ProfilePatch)
    given = {
        name: value for name, value in msgspec.structs.asdict(patch).items() if value is not UNSET
    }
    try:
        fields = check_change(given)
    except ProfileError as error:
        raise errors.invalid(error.field, error.message) from None
    token = active_token(request, channel)
    graph = request.config_dict[GRAPH]
    await from_meta(graph.update_business_profile(channel, token, fields))
    return json(await from_meta(graph.business_profile(channel, token)))


async def put_picture(request: web.Request) -> web.Response:
    """The body is the picture (a JPEG or PNG, at most 5 MB, at least 192 x 192): checked,
    uploaded through the channel's app's Resumable Upload API, then set on the profile."""
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    too_large = f"a profile picture is at most {PICTURE_MAX_BYTES} bytes"
    data = await read_file(request, PICTURE_MAX_BYTES, errors.ApiError(413, "too_large", too_large))
    try:
        picture = check_picture(data)
    except ProfileError as error:
        raise errors.invalid(error.field, error.message) from None
    app_id = (await settings_of(request, channel)).app_id
    if app_id is None:
        raise errors.conflict(
            "no_app_id",
            f"channel {channel} names no Meta app: set its app_id (the app of its token) first",
        )
    token = active_token(request, channel)
    graph = request.config_dict[GRAPH]
    extension = "png" if picture.mime_type == "image/png" else "jpg"
    handle = await from_meta(
        graph.upload_resumable(app_id, token, data, picture.mime_type, f"profile.{extension}")
    )
    change = {"profile_picture_handle": handle}
    await from_meta(graph.update_business_profile(channel, token, change))
    return json(await from_meta(graph.business_profile(channel, token)))


async def get_picture(request: web.Request) -> web.Response:
    """The profile picture Meta shows, from this origin: the page's CSP loads images
    from Parley only, and Meta's picture URL is on Meta's servers. Fetched without the
    token (the URL is public), and served only if it decodes as a JPEG or PNG."""
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.REPORTS)
    token = active_token(request, channel)
    graph = request.config_dict[GRAPH]
    url = (await from_meta(graph.business_profile(channel, token))).profile_picture_url
    if not url:
        raise errors.not_found(f"channel {channel}'s profile has no picture")
    data = await from_meta(graph.download(url, None, max_bytes=PICTURE_MAX_BYTES))
    try:
        picture = check_picture(data)
    except ProfileError:
        raise errors.ApiError(502, "graph_unavailable", "Meta's picture is not an image") from None
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300"}
    return web.Response(body=data, content_type=picture.mime_type, headers=headers)


PROFILE = "/v1/channels/{channel}/profile"
ENDPOINTS = [
    Endpoint("GET", PROFILE, get_profile,
             "The number's WhatsApp business profile, as Meta has it (supervisors, admins)",
             200, BusinessProfile, errors=(403, 404, 409, 422, 502), tag="onboarding"),
    Endpoint("PATCH", PROFILE, patch_profile,
             "Change the business profile (admins): the fields given, checked against "
             "Meta's limits", 200, BusinessProfile, body=ProfilePatch,
             errors=(403, 404, 409, 502), tag="onboarding"),
    Endpoint("GET", f"{PROFILE}/picture", get_picture,
             "The profile picture Meta shows, served from Parley (supervisors, admins)",
             200, None, media="image/*", errors=(403, 404, 409, 422, 502),
             tag="onboarding"),
    Endpoint("PUT", f"{PROFILE}/picture", put_picture,
             "Set the profile picture (admins): the body is a JPEG or PNG", 200,
             BusinessProfile, file_body=True, errors=(403, 404, 409, 502), tag="onboarding"),
]  # fmt: skip
