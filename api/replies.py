"""What an agent sends, checked against WhatsApp's rules before anything is produced:
each problem is a 422 naming its field, and nothing reaches Kafka.

- Free-form messages (text, a file, buttons or a list, a reaction) only within 24 hours
  of the customer's last message (409 `template_required` outside it).
- A file must have been uploaded (POST /v1/channels/{channel}/uploads) and be of a type
  and size WhatsApp takes as its kind; a caption only where WhatsApp shows one.
- A template must be registered and approved, and its variables must fit its definition
  (the count of body variables, the header's text or file, each URL button's value):
  Meta refuses a mismatch with error 132000 only after the agent has moved on.
- A quoted message must be one of the conversation's, already sent.
"""

import msgspec
from aiohttp import web

from api import errors, window
from api.appkeys import MEDIA, REDIS
from api.body import read_body
from api.schemas import (
    AttachmentBody,
    ChoiceBody,
    InteractiveBody,
    ReactionBody,
    ReplyBody,
    TemplateParametersBody,
)
from mediastore import Unavailable
from parley import whatsapp
from parley.events import (
    Actor,
    AgentReply,
    Attachment,
    Choice,
    Interactive,
    React,
    Section,
    TemplateParameters,
)
from store.reader import ConversationRecord
from store.templates import APPROVED, template, templates

EMOJI_MAX = 16


async def reply(
    request: web.Request, channel: str, conversation: ConversationRecord, actor: Actor, now: float
) -> AgentReply:
    body = await read_body(request, ReplyBody)
    if body.template is not None and not body.template.strip():
        body = msgspec.structs.replace(body, template=None)  # blank: no template
    _one_kind(body)
    reply_to = None
    if body.reply_to is not None:
        reply_to = quoted_wamid(conversation, body.reply_to, "reply_to")
    if body.template:
        return await _template_reply(request, channel, body, actor, reply_to)
    _window_open(conversation, now)
    attachment = None
    if body.attachment is not None:
        attachment = await _attachment(request, body.attachment, "attachment")
        _caption_fits(attachment.kind, body.text)
    interactive = None
    if body.interactive is not None:
        interactive = _interactive(body.interactive)
    return AgentReply(
        actor=actor,
        text=body.text,
        attachment=attachment,
        interactive=interactive,
        reply_to=reply_to,
    )


async def reaction(
    request: web.Request, conversation: ConversationRecord, actor: Actor, now: float
) -> React:
    body = await read_body(request, ReactionBody)
    emoji = body.emoji.strip()
    if emoji and (len(emoji) > EMOJI_MAX or emoji.isascii() or any(c.isspace() for c in emoji)):
        raise errors.invalid("emoji", 'one emoji, or "" to take the reaction back')
    target = quoted_wamid(conversation, body.message, "message")
    _window_open(conversation, now)
    return React(actor=actor, target=target, emoji=emoji)


def _one_kind(body: ReplyBody) -> None:
    """A reply is one message: text, a file (captioned by `text`), choices, or a
    template."""
    if body.template and (body.text or body.attachment or body.interactive):
        raise errors.invalid(
            "template", "a template is sent alone, without text, a file or choices"
        )
    if body.attachment and body.interactive:
        raise errors.invalid("interactive", "send a file or choices, not both")
    if body.interactive and body.text:
        raise errors.invalid("text", "choices carry their text in interactive.body")
    if body.parameters is not None and not body.template:
        raise errors.invalid("parameters", "parameters go with a template")
    if not ((body.text or "").strip() or body.template or body.attachment or body.interactive):
        raise errors.invalid("text", "a reply needs text, a template, a file or choices")


def _window_open(conversation: ConversationRecord, now: float) -> None:
    if not window.is_open(conversation.last_customer_at, now):
        raise errors.conflict(
            "template_required",
            "the customer last wrote more than 24 hours ago: only an approved template "
            'can be sent now (send {"template": name, "language": code})',
        )


def quoted_wamid(conversation: ConversationRecord, reference: str, field: str) -> str:
    """The wamid of the conversation's message `reference` names (its id or wamid)."""
    for message in conversation.messages:
        if reference in (message.id, message.wamid):
            wamid = message.wamid if message.direction == "outbound" else message.id
            if message.direction == "system" or not wamid:
                raise errors.invalid(field, f"message {reference} was not sent on WhatsApp")
            return wamid
    raise errors.invalid(field, f"no message {reference} in this conversation's recent messages")


async def _attachment(request: web.Request, body: AttachmentBody, field: str) -> Attachment:
    """The uploaded file as WhatsApp will get it; its type and size are the store's,
    not the client's word."""
    try:
        stream = await request.config_dict[MEDIA].stream(body.key)
    except Unavailable:
        raise errors.ApiError(
            503, "media_unavailable", "the media store failed; try again"
        ) from None
    if stream is None:
        raise errors.invalid(f"{field}.key", f"no uploaded file {body.key}: upload it first")
    async with stream:
        mime_type, size = stream.mime_type, stream.size
        kind = body.kind or whatsapp.media_kind(mime_type)
        animated = False
        if kind == "sticker":  # a static sticker is smaller: its header says which
            async for head in stream:
                animated = whatsapp.animated_webp(head[:32])
                break
    problem = whatsapp.media_problem(kind, mime_type, size, animated=animated)
    if problem is not None:
        raise errors.invalid(field, problem)
    return Attachment(
        key=body.key, kind=kind, mime_type=mime_type, filename=body.filename, size=size
    )


def _caption_fits(kind: str, caption: str | None) -> None:
    if not caption:
        return
    if kind not in whatsapp.CAPTIONED:
        raise errors.invalid("text", f"WhatsApp shows no caption on a {kind}")
    if len(caption) > whatsapp.CAPTION_MAX:
        raise errors.invalid("text", f"a caption is at most {whatsapp.CAPTION_MAX} characters")


def _choice(body: ChoiceBody) -> Choice:
    return Choice(id=body.id, title=body.title, description=body.description)


def _interactive(body: InteractiveBody) -> Interactive:
    interactive = Interactive(
        body=body.body,
        buttons=[_choice(button) for button in body.buttons],
        button=body.button,
        sections=[
            Section(title=section.title, rows=[_choice(row) for row in section.rows])
            for section in body.sections
        ],
        header=body.header,
        footer=body.footer,
    )
    for field, problem in whatsapp.interactive_problems(interactive):
        raise errors.invalid(field, problem)
    return interactive


async def _template_reply(
    request: web.Request, channel: str, body: ReplyBody, actor: Actor, reply_to: str | None
) -> AgentReply:
    """An approved template of the channel, with variables that fit its definition;
    sendable whenever the customer last wrote."""
    client = request.config_dict[REDIS]
    name = body.template or ""
    language = body.language
    if language is None:
        languages = [t.language for t in await templates(client, channel) if t.name == name]
        if not languages:
            raise errors.invalid("template", f"no template {name} on this channel")
        if len(languages) != 1:
            raise errors.invalid("language", f"say which language of {name} to send")
        language = languages[0]
    found = await template(client, channel, name, language)
    if found is None:
        raise errors.invalid("template", f"no template {name} ({language}) on this channel")
    if found.status != APPROVED:
        raise errors.invalid("template", f"template {name} ({language}) is {found.status}")
    parameters = await _parameters(request, body.parameters)
    if found.components:
        for field, problem in whatsapp.template_problems(found.components, parameters):
            raise errors.invalid(field, problem)
    return AgentReply(
        actor=actor, template=name, language=language, parameters=parameters, reply_to=reply_to
    )


async def _parameters(
    request: web.Request, body: TemplateParametersBody | None
) -> TemplateParameters | None:
    if body is None:
        return None
    header_media = None
    if body.header_media is not None:
        header_media = await _attachment(request, body.header_media, "parameters.header_media")
    return TemplateParameters(
        header_text=body.header_text,
        header_media=header_media,
        body=list(body.body),
        buttons=dict(body.buttons),
    )
