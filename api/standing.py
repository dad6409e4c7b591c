"""A channel's standing with Meta (parley/standing.py): its verified name and the name's
review, quality rating, messaging limit and verified badge, as the webhooks last moved
it (supervisors and admins read it), refreshed from the Graph API on demand (admins)."""

from typing import Final

import msgspec
from aiohttp import web

from api.access import on_channel
from api.appkeys import CLOCK, GRAPH, REDIS
from api.meta import active_token, from_meta
from api.responses import json
from api.spec import Endpoint
from assign import Action
from parley.standing import Standing, problems
from store import standing

# Where the steps Parley cannot take through the Graph API are taken.
WHATSAPP_MANAGER: Final = "https://business.facebook.com/wa/manage/phone-numbers/"
BADGE_HELP: Final = "https://developers.facebook.com/docs/whatsapp/official-business-accounts/"


class StandingOut(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    standing: Standing
    # What needs an admin: name_declined (no sends until a new name is approved),
    # quality_red (the messaging limit is at risk).
    problems: list[str]
    # The steps taken in Meta's own tools: changing the display name and requesting
    # the verified badge happen in WhatsApp Manager.
    manage_url: str = WHATSAPP_MANAGER
    badge_help_url: str = BADGE_HELP


def _out(channel: str, found: Standing | None) -> StandingOut:
    current = found or Standing()
    return StandingOut(channel=channel, standing=current, problems=problems(current))


async def get_standing(request: web.Request) -> web.Response:
    """As last read or moved by a webhook; every field null until the first read."""
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.REPORTS)
    return json(_out(channel, await standing.standing(request.config_dict[REDIS], channel)))


async def refresh_standing(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    token = active_token(request, channel)
    fields = await from_meta(request.config_dict[GRAPH].number_fields(channel, token))
    now = request.config_dict[CLOCK]()
    saved = await standing.save_read(request.config_dict[REDIS], channel, fields, now)
    return json(_out(channel, saved))


STANDING = "/v1/channels/{channel}/standing"
ENDPOINTS = [
    Endpoint("GET", STANDING, get_standing,
             "The number's verified name and its review, quality rating, messaging limit "
             "and verified badge (supervisors, admins)", 200, StandingOut,
             errors=(403, 404), tag="onboarding"),
    Endpoint("POST", f"{STANDING}/refresh", refresh_standing,
             "Read the number's standing from the Graph API now (admins)", 200, StandingOut,
             errors=(403, 404, 409, 422, 502), tag="onboarding"),
]  # fmt: skip
