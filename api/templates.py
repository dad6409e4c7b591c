"""A channel's message templates: the ones that may be sent outside the 24-hour window,
synced from its WhatsApp Business Account (`POST .../templates/sync`, and by the engine
on a schedule) or registered by hand (admins); their status follows Meta's webhooks."""

import re

from aiohttp import web

from api import errors
from api.access import on_channel
from api.appkeys import CLOCK, GRAPH, REDIS, TOKENS
from api.body import read_body
from api.responses import json
from api.schemas import TemplateIn, TemplateList, TemplateOut, TemplateSynced, template_out
from api.spec import Endpoint
from assign import Action
from parley.graph import GraphError
from store.channels import load_channel_settings
from store.templates import (
    Template,
    delete_template,
    from_definitions,
    replace_templates,
    save_template,
    templates,
)

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
        components=body.components,
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


async def sync_templates(request: web.Request) -> web.Response:
    """The channel's templates become its business account's list, now (supervisors
    and admins): new ones appear, changed definitions replace the old, and templates the
    account no longer has go (they could not be sent)."""
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    client = request.config_dict[REDIS]
    settings = await load_channel_settings(client, channel)
    if settings is None or settings.waba_id is None:
        raise errors.conflict(
            "no_business_account",
            f"channel {channel} names no WhatsApp Business Account: set its waba_id first",
        )
    token = request.config_dict[TOKENS](channel)
    if token is None:
        raise errors.conflict("not_active", f"channel {channel} is not active yet")
    try:
        definitions = await request.config_dict[GRAPH].templates(settings.waba_id, token)
    except GraphError as error:
        raise errors.graph_failed(error) from None
    now = request.config_dict[CLOCK]()
    kept = await replace_templates(client, channel, from_definitions(definitions, now))
    return json(TemplateSynced(waba_id=settings.waba_id, templates=kept))


TEMPLATES = "/v1/channels/{channel}/templates"
TEMPLATE = f"{TEMPLATES}/{{name}}/{{language}}"
ENDPOINTS = [
    Endpoint("GET", TEMPLATES, list_templates,
             "The channel's message templates, with the variables each needs", 200,
             TemplateList, errors=(404,), tag="templates"),
    Endpoint("POST", f"{TEMPLATES}/sync", sync_templates,
             "Replace the channel's templates with its business account's list", 200,
             TemplateSynced, errors=(403, 404, 409, 422, 502), tag="templates"),
    Endpoint("PUT", TEMPLATE, put_template, "Register or update a template (admins)", 200,
             TemplateOut, body=TemplateIn, errors=(403, 404), tag="templates"),
    Endpoint("DELETE", TEMPLATE, remove_template, "Remove a template (admins)", 204,
             errors=(403, 404), tag="templates"),
]  # fmt: skip
