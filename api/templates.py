"""A channel's message templates: the ones that may be sent outside the 24-hour window,
synced from its WhatsApp Business Account (`POST .../templates/sync`, and by the engine
on a schedule) or registered by hand (admins); their status follows Meta's webhooks."""

import re

from aiohttp import web

from api import errors
from api.access import on_channel
from api.appkeys import CLOCK, GRAPH, REDIS
from api.body import read_body
from api.meta import active_token, business_account, from_meta
from api.responses import json
from api.schemas import TemplateIn, TemplateList, TemplateOut, TemplateSynced, template_out
from api.spec import Endpoint
from assign import Action, allowed
from parley.template_submission import Submission, SubmissionError, check, components
from parley.template_submission import request as submission_request
from store.templates import (
    APPROVED,
    Template,
    delete_template,
    from_definitions,
    replace_templates,
    save_template,
    template,
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
    """Admins see every template and where its review stands; everyone else only the
    approved ones, the only ones that can be sent."""
    channel = request.match_info["channel"]
    _, role = await on_channel(request, channel, Action.SEE)
    found = await templates(request.config_dict[REDIS], channel)
    if not allowed(role, Action.MANAGE):
        found = [one for one in found if one.status == APPROVED]
    return json(TemplateList(templates=[template_out(one) for one in found]))


async def submit_template(request: web.Request) -> web.Response:
    """A template written here goes to the business account for Meta's review (admins):
    Meta's rules are checked first (422 naming the part), then it is kept as Meta
    answered (PENDING, usually) and its status follows the webhooks."""
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    body = await read_body(request, Submission)
    try:
        check(body)
    except SubmissionError as error:
        raise errors.invalid(error.field, error.message) from None
    waba_id = await business_account(request, channel)
    token = active_token(request, channel)
    client = request.config_dict[REDIS]
    if await template(client, channel, body.name, body.language) is not None:
        raise errors.conflict(
            "already_exists", f"template {body.name} ({body.language}) exists on {channel}"
        )
    created = await from_meta(
        request.config_dict[GRAPH].create_template(waba_id, token, submission_request(body))
    )
    record = Template(
        name=body.name,
        language=body.language,
        category=created.category or body.category,
        status=created.status,
        updated_at=request.config_dict[CLOCK](),
        components=components(body),
        id=created.id,
    )
    await save_template(client, channel, record)
    return json(template_out(record), status=201)


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
    """Removes the template here and, when Meta has it, from the business account
    (that language only)."""
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    name, language = _template_id(request)
    client = request.config_dict[REDIS]
    found = await template(client, channel, name, language)
    if found is None:
        raise errors.not_found(f"no template {name} ({language})")
    if found.id is not None:
        waba_id = await business_account(request, channel)
        token = active_token(request, channel)
        await from_meta(
            request.config_dict[GRAPH].delete_template(waba_id, token, name, template_id=found.id)
        )
    await delete_template(client, channel, name, language)
    return web.Response(status=204)


async def sync_templates(request: web.Request) -> web.Response:
    """The channel's templates become its business account's list, now (supervisors
    and admins): new ones appear, changed definitions replace the old, and templates the
    account no longer has go (they could not be sent)."""
    channel = request.match_info["channel"]
    await on_channel(request, channel, Action.MANAGE)
    waba_id = await business_account(request, channel)
    token = active_token(request, channel)
    definitions = await from_meta(request.config_dict[GRAPH].templates(waba_id, token))
    client = request.config_dict[REDIS]
    now = request.config_dict[CLOCK]()
    kept = await replace_templates(client, channel, from_definitions(definitions, now))
    return json(TemplateSynced(waba_id=waba_id, templates=kept))


TEMPLATES = "/v1/channels/{channel}/templates"
TEMPLATE = f"{TEMPLATES}/{{name}}/{{language}}"
ENDPOINTS = [
    Endpoint("GET", TEMPLATES, list_templates,
             "The channel's message templates, with the variables each needs", 200,
             TemplateList, errors=(404,), tag="templates"),
    Endpoint("POST", f"{TEMPLATES}/sync", sync_templates,
             "Replace the channel's templates with its business account's list", 200,
             TemplateSynced, errors=(403, 404, 409, 422, 502), tag="templates"),
    Endpoint("POST", TEMPLATES, submit_template,
             "Write a template and submit it to the business account for Meta's review "
             "(admins); it starts as Meta answers, usually PENDING", 201, TemplateOut,
             body=Submission, errors=(403, 404, 409, 502), tag="templates"),
    Endpoint("PUT", TEMPLATE, put_template, "Register or update a template (admins)", 200,
             TemplateOut, body=TemplateIn, errors=(403, 404), tag="templates"),
    Endpoint("DELETE", TEMPLATE, remove_template,
             "Remove a template (admins), from the business account too when Meta has it",
             204, errors=(403, 404, 409, 422, 502), tag="templates"),
]  # fmt: skip
