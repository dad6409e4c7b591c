"""What a call to Meta for a channel needs: its Graph token (an active number), its
business account or app when the call is on one, and Meta's refusals as API errors."""

from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import web

from api import errors
from api.appkeys import REDIS, TOKENS
from parley.channels import ChannelSettings
from parley.graph import GraphError
from store.channels import load_channel_settings

T = TypeVar("T")


def active_token(request: web.Request, channel: str) -> str:
    """The channel's Graph token; 409 `not_active` until its number is registered."""
    token = request.config_dict[TOKENS](channel)
    if token is None:
        raise errors.conflict("not_active", f"channel {channel} is not active yet")
    return token


async def settings_of(request: web.Request, channel: str) -> ChannelSettings:
    settings = await load_channel_settings(request.config_dict[REDIS], channel)
    if settings is None:
        raise errors.not_found(f"no channel {channel}")
    return settings


async def business_account(request: web.Request, channel: str) -> str:
    """The channel's WhatsApp Business Account; 409 `no_business_account` without one."""
    waba_id = (await settings_of(request, channel)).waba_id
    if waba_id is None:
        raise errors.conflict(
            "no_business_account",
            f"channel {channel} names no WhatsApp Business Account: set its waba_id first",
        )
    return waba_id


async def from_meta(call: Awaitable[T]) -> T:
    """The call's answer; Meta's refusal as 422 `graph_refused`, its silence or failure
    as 502 `graph_unavailable`."""
    try:
        return await call
    except GraphError as error:
        raise errors.graph_failed(error) from None
