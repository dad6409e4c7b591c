"""Channels: the selector, settings and grants (admins), queues and reports."""

from datetime import date, timedelta

import msgspec
from aiohttp import web
from msgspec import UNSET

from api import errors
from api.access import caller, on_channel, visible_channels
from api.appkeys import CLOCK, DIRECTORY, READER, REDIS, ROUTING
from api.body import read_body, read_query
from api.responses import json
from api.schemas import (
    AccessOut,
    ChannelList,
    ChannelOut,
    ChannelPatch,
    Grant,
    GrantRole,
    ListQuery,
    Page,
    Report,
    ReportQuery,
    page_out,
    report_out,
)
from api.spec import Endpoint
from assign import Action
from assign.access import ChannelAccess
from parley.business_hours import HoursError, OutOfHoursReply, check
from parley.channels import ChannelSettings, clean_display_name
from parley.durations import DurationError, format_period, parse_period
from parley.events import Role
from parley.routing import problems as routing_problems
from parley.sla import problems as sla_problems
from parley.state import Queue
from store import channels as channel_store
from store import reports
from store.directory import Missing
from store.reader import CursorError
from store.templates import APPROVED, template


def _grant(role: Role | None) -> GrantRole | None:
    return None if role is None else GrantRole(role.value)


TEXT_MAX = 4096  # WhatsApp's longest text message


def _channel_out(
    channel: str, settings: ChannelSettings, access: ChannelAccess, role: Role
) -> ChannelOut:
    return ChannelOut(
        id=channel,
        display_name=settings.display_name,
        auto_assign=settings.auto_assign,
        auto_resolve_new=format_period(settings.auto_resolve_new_s),
        auto_resolve_pending=format_period(settings.auto_resolve_pending_s),
        send_rate=settings.send_rate,
        waba_id=settings.waba_id,
        app_id=settings.app_id,
        read_receipts=settings.read_receipts,
        business_hours=settings.business_hours,
        out_of_hours_reply=settings.out_of_hours_reply,
        sla=settings.sla,
        routing=settings.routing,
        all_users=_grant(access.all_users),
        all_teams=_grant(access.all_teams),
        role=role.value,
    )


async def list_channels(request: web.Request) -> web.Response:
    """Every channel the caller has a role on, by display name: the channel selector."""
    user = await caller(request)
    client = request.config_dict[REDIS]
    visible = await visible_channels(request, user)
    found = await channel_store.settings_of(client, [access.channel for access, _ in visible])
    channels = []
    for (access, role), settings in zip(visible, found, strict=True):
        if settings is not None:
            channels.append(_channel_out(access.channel, settings, access, role))
    channels.sort(key=lambda channel: (channel.display_name.casefold(), channel.id))
    return json(ChannelList(channels=channels))


async def _settings(request: web.Request, channel: str) -> ChannelSettings:
    settings = await channel_store.load_channel_settings(request.config_dict[REDIS], channel)
    if settings is None:
        raise errors.not_found(f"no channel {channel}")
    return settings


async def get_channel(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    _, role = await on_channel(request, channel, Action.SEE)
    access = await request.config_dict[DIRECTORY].channel_access(channel)
    return json(_channel_out(channel, await _settings(request, channel), access, role))


async def patch_channel(request: web.Request) -> web.Response:
    """Settings apply to the engine's next batch and the sweeper's next pass."""
    channel = request.match_info["channel"]
    _, role = await on_channel(request, channel, Action.MANAGE)
    patch = await read_body(request, ChannelPatch)
    current = await _settings(request, channel)
    changed = _apply_patch(current, patch)  # validates everything before any write
    if patch.out_of_hours_reply:
        await _check_template(request, channel, patch.out_of_hours_reply)
    await channel_store.update_channel_settings(
        request.config_dict[REDIS], channel, current, changed
    )
    if changed.routing != current.routing:
        if current.routing is None:
            await request.config_dict[ROUTING].open_pool(channel)
        await request.config_dict[ROUTING].wake(channel)
    if patch.all_users is not UNSET or patch.all_teams is not UNSET:
        await request.config_dict[DIRECTORY].set_switches(
            channel,
            all_users=_role(patch.all_users),
            all_teams=_role(patch.all_teams),
        )
    access = await request.config_dict[DIRECTORY].channel_access(channel)
    return json(_channel_out(channel, changed, access, role))


def _role(value: GrantRole | msgspec.UnsetType | None) -> Role | msgspec.UnsetType | None:
    if value is UNSET or value is None:
        return value
    return Role(value.value)


def _apply_patch(current: ChannelSettings, patch: ChannelPatch) -> ChannelSettings:
    changes: dict[str, object] = {}
    if patch.display_name is not UNSET:
        try:
            changes["display_name"] = clean_display_name(patch.display_name)
        except ValueError as error:
            raise errors.invalid("display_name", str(error)) from None
    if patch.auto_assign is not UNSET:
        changes["auto_assign"] = patch.auto_assign
    if patch.read_receipts is not UNSET:
        changes["read_receipts"] = patch.read_receipts
    if patch.send_rate is not UNSET:
        changes["send_rate"] = patch.send_rate
    if patch.waba_id is not UNSET:
        changes["waba_id"] = patch.waba_id
    if patch.app_id is not UNSET:
        changes["app_id"] = patch.app_id
    if patch.business_hours is not UNSET:
        if patch.business_hours is not None:
            try:
                check(patch.business_hours)
            except HoursError as error:
                raise errors.invalid(f"business_hours.{error.field}", str(error)) from None
        changes["business_hours"] = patch.business_hours
    if patch.sla is not UNSET:
        if patch.sla is not None:
            for field, problem in sla_problems(patch.sla):
                raise errors.invalid(f"sla.{field}", problem)
        changes["sla"] = patch.sla
    if patch.routing is not UNSET:
        if patch.routing is not None:
            for field, problem in routing_problems(patch.routing):
                raise errors.invalid(f"routing.{field}", problem)
        changes["routing"] = patch.routing
    if patch.out_of_hours_reply is not UNSET:
        if patch.out_of_hours_reply is not None:
            _check_reply(patch.out_of_hours_reply)
        changes["out_of_hours_reply"] = patch.out_of_hours_reply
    for name in ("auto_resolve_new", "auto_resolve_pending"):
        text = getattr(patch, name)
        if text is not UNSET:
            try:
                changes[f"{name}_s"] = parse_period(text)
            except DurationError as error:
                raise errors.invalid(name, str(error)) from None
    return msgspec.structs.replace(current, **changes)


def _check_reply(reply: OutOfHoursReply) -> None:
    field = "out_of_hours_reply"
    if (reply.text is None) == (reply.template is None):
        raise errors.invalid(field, "give either a text or a template")
    if reply.text is not None and not 1 <= len(reply.text.strip()) <= TEXT_MAX:
        raise errors.invalid(f"{field}.text", f"must be 1 to {TEXT_MAX} characters")
    if reply.template is not None and not reply.language:
        raise errors.invalid(f"{field}.language", "a template needs its language, e.g. en_US")


async def _check_template(request: web.Request, channel: str, reply: OutOfHoursReply) -> None:
    """A template reply must be one the channel may send: registered and approved."""
    if reply.template is None or reply.language is None:
        return
    found = await template(request.config_dict[REDIS], channel, reply.template, reply.language)
    if found is None or found.status != APPROVED:
        state = "not on this channel" if found is None else found.status
        raise errors.invalid(
            "out_of_hours_reply.template", f"{reply.template} ({reply.language}) is {state}"
        )


async def get_access(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    return json(_access_out(await request.config_dict[DIRECTORY].channel_access(channel)))


def _access_out(access: ChannelAccess) -> AccessOut:
    return AccessOut(
        channel=access.channel,
        users={user: GrantRole(role.value) for user, role in sorted(access.user_grants.items())},
        teams={team: GrantRole(role.value) for team, role in sorted(access.team_grants.items())},
        all_users=_grant(access.all_users),
        all_teams=_grant(access.all_teams),
    )


async def put_user_access(request: web.Request) -> web.Response:
    return await _change_access(request, "user", grant=True)


async def delete_user_access(request: web.Request) -> web.Response:
    return await _change_access(request, "user", grant=False)


async def put_team_access(request: web.Request) -> web.Response:
    return await _change_access(request, "team", grant=True)


async def delete_team_access(request: web.Request) -> web.Response:
    return await _change_access(request, "team", grant=False)


async def _change_access(request: web.Request, who: str, *, grant: bool) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    grantee = request.match_info[who]
    directory = request.config_dict[DIRECTORY]
    try:
        if grant:
            role = Role((await read_body(request, Grant)).role.value)
            await (directory.grant_user if who == "user" else directory.grant_team)(
                channel, grantee, role
            )
        else:
            await (directory.revoke_user if who == "user" else directory.revoke_team)(
                channel, grantee
            )
    except Missing as error:
        raise errors.not_found(str(error)) from None
    return json(_access_out(await directory.channel_access(channel)))


async def list_conversations(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.SEE)
    query = read_query(request, ListQuery)
    try:
        page = await request.config_dict[READER].page(
            channel,
            Queue(query.queue),
            limit=query.limit,
            cursor=query.cursor,
            newest_first=query.order == "newest",
        )
    except CursorError as error:
        raise errors.bad_parameter("cursor", str(error)) from None
    return json(page_out(page))


async def get_report(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.REPORTS)
    query = read_query(request, ReportQuery)
    end = _day(query.to, "to") if query.to else reports.day_of(request.config_dict[CLOCK]())
    # Six days before `to`, but not before the first day there is (`to=0001-01-01`).
    week = min(timedelta(days=6), end - date.min)
    start = _day(query.from_, "from") if query.from_ else end - week
    if start > end:
        raise errors.bad_parameter("from", "must not be after `to`")
    if (end - start).days >= reports.MAX_DAYS:
        raise errors.bad_parameter("from", f"a report covers at most {reports.MAX_DAYS} days")
    return json(report_out(await request.config_dict[READER].report(channel, start, end)))


def _day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise errors.bad_parameter(field, f"not a date (YYYY-MM-DD): {text}") from None


ONE = "/v1/channels/{channel}"
USER_ACCESS = f"{ONE}/access/users/{{user}}"
TEAM_ACCESS = f"{ONE}/access/teams/{{team}}"
ENDPOINTS = [
    Endpoint("GET", "/v1/channels", list_channels,
             "The channels the caller can see, for a channel selector", 200, ChannelList,
             tag="channels"),
    Endpoint("GET", ONE, get_channel, "One channel's settings", 200, ChannelOut,
             errors=(404,), tag="channels"),
    Endpoint("PATCH", ONE, patch_channel, "Change settings and switches (admins)", 200,
             ChannelOut, body=ChannelPatch, errors=(403, 404), tag="channels"),
    Endpoint("GET", f"{ONE}/access", get_access, "The channel's grants (admins)", 200,
             AccessOut, errors=(403, 404), tag="channels"),
    Endpoint("PUT", USER_ACCESS, put_user_access, "Grant a user a role (admins)", 200,
             AccessOut, body=Grant, errors=(403, 404), tag="channels"),
    Endpoint("DELETE", USER_ACCESS, delete_user_access, "Remove a user's grant (admins)",
             200, AccessOut, errors=(403, 404), tag="channels"),
    Endpoint("PUT", TEAM_ACCESS, put_team_access, "Grant a team a role (admins)", 200,
             AccessOut, body=Grant, errors=(403, 404), tag="channels"),
    Endpoint("DELETE", TEAM_ACCESS, delete_team_access, "Remove a team's grant (admins)",
             200, AccessOut, errors=(403, 404), tag="channels"),
    Endpoint("GET", f"{ONE}/conversations", list_conversations,
             "A page of a queue by last activity; follow next_cursor for the next", 200,
             Page, query=ListQuery, errors=(404,), tag="conversations"),
    Endpoint("GET", f"{ONE}/report", get_report,
             "Daily figures and queue sizes (supervisors)", 200, Report,
             query=ReportQuery, errors=(403, 404), tag="reports"),
]  # fmt: skip
