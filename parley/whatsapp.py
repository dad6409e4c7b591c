"""WhatsApp's rules for what Parley sends, and the message objects it sends: pure.

The Cloud API's "Messages" and "Supported media types" references: which files each
kind takes and how large, the limits of reply buttons and lists, how a template's
variables are counted, and the shape of each message object `GraphClient.send` takes.
The API checks a reply against these before anything is produced (422 naming the
problem); the sender builds its request from them.
"""

import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from parley.events import Choice, Interactive, TemplateParameters

KB = 1024
MB = 1024 * 1024


class MediaRule(NamedTuple):
    """The MIME types a kind of media may have and its largest size in bytes."""

    mime_types: frozenset[str]
    max_bytes: int


# Meta's "Supported media types" (Cloud API media reference). A sticker is static
# (100 KB) unless its WebP is animated (500 KB); audio/ogg is Opus only.
MEDIA_RULES: Mapping[str, MediaRule] = {
    "audio": MediaRule(
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}), 16 * MB
    ),
    "document": MediaRule(
        frozenset(
            {
                "text/plain",
                "application/pdf",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            }
        ),
        100 * MB,
    ),
    "image": MediaRule(frozenset({"image/jpeg", "image/png"}), 5 * MB),
    "sticker": MediaRule(frozenset({"image/webp"}), 500 * KB),
    "video": MediaRule(frozenset({"video/mp4", "video/3gpp"}), 16 * MB),
}
STATIC_STICKER_MAX = 100 * KB
# The message types that carry a caption, and the longest caption (Cloud API messages).
CAPTIONED = frozenset({"image", "video", "document"})
CAPTION_MAX = 1024


def media_problem(kind: str, mime_type: str, size: int, *, animated: bool = False) -> str | None:
    """Why Meta would refuse a file of `size` bytes and `mime_type` sent as `kind`
    ("image", "video", "audio", "document" or "sticker"; `animated` for an animated
    WebP sticker), else None: for checking before anything is uploaded."""
    rule = MEDIA_RULES.get(kind)
    if rule is None:
        return f"{kind!r} is not a kind of media; one of {', '.join(sorted(MEDIA_RULES))}"
    base = mime_type.split(";", 1)[0].strip().lower()
    if base not in rule.mime_types:
        return f"a {kind} must be one of {', '.join(sorted(rule.mime_types))}, not {mime_type!r}"
    if base == "audio/ogg" and not _opus_or_unsaid(mime_type):
        return "audio/ogg must be Opus (codecs=opus)"
    if size <= 0:
        return "the file is empty"
    limit = rule.max_bytes if kind != "sticker" or animated else STATIC_STICKER_MAX
    if size > limit:
        return f"a {kind} may be at most {_size_text(limit)}; this one is {_size_text(size)}"
    return None


def _opus_or_unsaid(mime_type: str) -> bool:
    for parameter in mime_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "codecs" and value.strip().strip('"').lower() != "opus":
            return False
    return True


def _size_text(size: int) -> str:
    if size >= MB and size % MB == 0:
        return f"{size // MB} MB"
    if size >= KB and size % KB == 0:
        return f"{size // KB} KB"
    return f"{size} bytes"


BUTTONS_MAX, BUTTON_TITLE_MAX, CHOICE_ID_MAX = 3, 20, 256
ROWS_MAX, ROW_TITLE_MAX, ROW_DESCRIPTION_MAX, SECTION_TITLE_MAX = 10, 24, 72, 24
ROW_ID_MAX = 200
# Meta: a reply-buttons body holds 1,024 characters, a list's 4,096.
BUTTONS_BODY_MAX, LIST_BODY_MAX = 1024, 4096
MEDIA_HEADERS = ("IMAGE", "VIDEO", "DOCUMENT")
_VARIABLE = re.compile(r"{{\s*(\d+)\s*}}")


def media_kind(mime_type: str) -> str:
    """The kind WhatsApp sends a file of this type as (image/webp: a sticker); a
    document when no kind takes the type (and then `media_problem` says so)."""
    base = mime_type.split(";", 1)[0].strip().lower()
    return next((kind for kind, rule in MEDIA_RULES.items() if base in rule.mime_types), "document")


def animated_webp(data: bytes) -> bool:
    """An extended WebP (VP8X) with its animation flag set: an animated sticker."""
    return (
        len(data) > 20
        and data[:4] == b"RIFF"
        and data[8:16] == b"WEBPVP8X"
        and bool(data[20] & 0x02)
    )


def interactive_problems(interactive: Interactive) -> Iterator[tuple[str, str]]:
    """(field, problem) for every way WhatsApp would refuse these choices."""
    for field, text in _texts(interactive):
        if not text.strip():
            yield field, "must not be blank"
    body_max = LIST_BODY_MAX if interactive.sections else BUTTONS_BODY_MAX
    if len(interactive.body) > body_max:
        yield "interactive.body", f"at most {body_max} characters"
    if bool(interactive.buttons) == bool(interactive.sections):
        yield "interactive", "send either buttons or a list (sections), not both or neither"
    if len(interactive.buttons) > BUTTONS_MAX:
        yield "interactive.buttons", f"at most {BUTTONS_MAX} reply buttons"
    if len({button.title for button in interactive.buttons}) != len(interactive.buttons):
        yield "interactive.buttons", "every button needs its own title"
    for index, button in enumerate(interactive.buttons):
        if len(button.title) > BUTTON_TITLE_MAX:
            yield f"interactive.buttons[{index}].title", f"at most {BUTTON_TITLE_MAX} characters"
        if len(button.id) > CHOICE_ID_MAX:
            yield f"interactive.buttons[{index}].id", f"at most {CHOICE_ID_MAX} characters"
    if interactive.sections:
        if not interactive.button or len(interactive.button) > BUTTON_TITLE_MAX:
            yield "interactive.button", f"a list needs a button label of 1 to {BUTTON_TITLE_MAX}"
        rows = [row for section in interactive.sections for row in section.rows]
        if not rows or len(rows) > ROWS_MAX:
            yield "interactive.sections", f"a list has 1 to {ROWS_MAX} rows in all"
        for s, section in enumerate(interactive.sections):
            if section.title and len(section.title) > SECTION_TITLE_MAX:
                yield f"interactive.sections[{s}].title", f"at most {SECTION_TITLE_MAX} characters"
            if not section.title and len(interactive.sections) > 1:
                yield f"interactive.sections[{s}].title", "several sections need a title each"
            if not section.rows:
                yield f"interactive.sections[{s}].rows", "a section has at least one row"
            for r, row in enumerate(section.rows):
                where = f"interactive.sections[{s}].rows[{r}]"
                if len(row.id) > ROW_ID_MAX:
                    yield f"{where}.id", f"at most {ROW_ID_MAX} characters"
                if len(row.title) > ROW_TITLE_MAX:
                    yield f"{where}.title", f"at most {ROW_TITLE_MAX} characters"
                if row.description and len(row.description) > ROW_DESCRIPTION_MAX:
                    yield f"{where}.description", f"at most {ROW_DESCRIPTION_MAX} characters"
    if len({choice.id for choice in _choices(interactive)}) != len(list(_choices(interactive))):
        yield "interactive", "every button or row needs its own id"


def _choices(interactive: Interactive) -> Iterator[Any]:
    yield from interactive.buttons
    for section in interactive.sections:
        yield from section.rows


def _texts(interactive: Interactive) -> Iterator[tuple[str, str]]:
    """(field, text) of every text the message shows or sends back."""
    for name in ("body", "header", "footer", "button"):
        text = getattr(interactive, name)
        if text is not None:
            yield f"interactive.{name}", text
    for index, button in enumerate(interactive.buttons):
        yield from _choice_texts(f"interactive.buttons[{index}]", button)
    for s, section in enumerate(interactive.sections):
        if section.title is not None:
            yield f"interactive.sections[{s}].title", section.title
        for r, row in enumerate(section.rows):
            yield from _choice_texts(f"interactive.sections[{s}].rows[{r}]", row)


def _choice_texts(where: str, choice: Choice) -> Iterator[tuple[str, str]]:
    yield f"{where}.id", choice.id
    yield f"{where}.title", choice.title
    if choice.description is not None:
        yield f"{where}.description", choice.description


def template_problems(
    components: list[dict[str, Any]], parameters: TemplateParameters | None
) -> Iterator[tuple[str, str]]:
    """(field, problem) for every way these values do not fit the template's registered
    definition (Meta answers 132000 for a count that does not match)."""
    given = parameters or TemplateParameters()
    header = _component(components, "HEADER")
    if header is not None:
        form = str(header.get("format", "TEXT")).upper()
        if form == "TEXT":
            wanted = len(_variables(str(header.get("text", ""))))
            if wanted and not given.header_text:
                yield "parameters.header_text", "the template's header has a variable"
            if not wanted and given.header_text:
                yield "parameters.header_text", "the template's header has no variable"
            if given.header_media is not None:
                yield "parameters.header_media", "the template's header is text, not a file"
        elif form in MEDIA_HEADERS:
            media = given.header_media
            if media is None:
                yield "parameters.header_media", f"the template's header is a {form.lower()}"
            elif media.kind != form.lower():
                yield "parameters.header_media", f"the header must be a {form.lower()}"
            if given.header_text:
                yield "parameters.header_text", f"the template's header is a {form.lower()}"
    elif given.header_text or given.header_media:
        yield "parameters", "the template has no header"
    body = _component(components, "BODY")
    wanted = len(_variables(str(body.get("text", "")))) if body else 0
    if len(given.body) != wanted:
        yield (
            "parameters.body",
            f"the template's body has {wanted} variables, not {len(given.body)}",
        )
    for index, text in enumerate(given.body):
        if not text.strip():
            yield f"parameters.body[{index}]", "must not be blank"
    if given.header_text is not None and not given.header_text.strip():
        yield "parameters.header_text", "must not be blank"
    for index, text in given.buttons.items():
        if not text.strip():
            yield f"parameters.buttons.{index}", "must not be blank"
    url_buttons = _url_buttons(components)
    for index in url_buttons:
        if index not in given.buttons:
            yield f"parameters.buttons.{index}", "the template's URL button has a variable"
    for index in given.buttons:
        if index not in url_buttons:
            yield f"parameters.buttons.{index}", "no URL button with a variable there"


def _component(components: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next(
        (c for c in components if isinstance(c, dict) and str(c.get("type", "")).upper() == kind),
        None,
    )


def _variables(text: str) -> set[str]:
    return set(_VARIABLE.findall(text))


def _url_buttons(components: list[dict[str, Any]]) -> set[int]:
    """The indexes of the URL buttons whose URL has a variable."""
    buttons = (_component(components, "BUTTONS") or {}).get("buttons", [])
    found = set()
    for index, button in enumerate(buttons if isinstance(buttons, list) else []):
        if not isinstance(button, dict):
            continue
        if str(button.get("type", "")).upper() == "URL" and _variables(str(button.get("url", ""))):
            found.add(index)
    return found


def template_variables(components: list[dict[str, Any]]) -> list[str]:
    """What a send of this template must give: "header_text", "header_media:<kind>",
    "body:<n>" (the body's variable count) and "button:<index>" per URL button with a
    variable. Empty for a template without variables (or without a definition)."""
    wanted: list[str] = []
    header = _component(components, "HEADER")
    if header is not None:
        form = str(header.get("format", "TEXT")).upper()
        if form == "TEXT" and _variables(str(header.get("text", ""))):
            wanted.append("header_text")
        elif form in MEDIA_HEADERS:
            wanted.append(f"header_media:{form.lower()}")
    body = _component(components, "BODY")
    count = len(_variables(str(body.get("text", "")))) if body else 0
    if count:
        wanted.append(f"body:{count}")
    wanted += [f"button:{index}" for index in sorted(_url_buttons(components))]
    return wanted


# --- The message objects GraphClient.send takes ----------------------------------------


def text_message(text: str) -> dict[str, Any]:
    return {"type": "text", "text": {"preview_url": False, "body": text}}


def media_message(
    kind: str, media_id: str, *, caption: str | None, filename: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": media_id}
    if caption and kind in CAPTIONED:
        body["caption"] = caption
    if filename and kind == "document":
        body["filename"] = filename
    return {"type": kind, kind: body}


def template_message(
    name: str,
    language: str,
    parameters: TemplateParameters | None,
    *,
    header_media_id: str | None = None,
) -> dict[str, Any]:
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    components: list[dict[str, Any]] = []
    if parameters is not None:
        if parameters.header_text:
            header = [{"type": "text", "text": parameters.header_text}]
            components.append({"type": "header", "parameters": header})
        elif parameters.header_media is not None and header_media_id is not None:
            kind = parameters.header_media.kind
            components.append(
                {"type": "header", "parameters": [{"type": kind, kind: {"id": header_media_id}}]}
            )
        if parameters.body:
            body = [{"type": "text", "text": text} for text in parameters.body]
            components.append({"type": "body", "parameters": body})
        for index, text in sorted(parameters.buttons.items()):
            components.append(
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": str(index),
                    "parameters": [{"type": "text", "text": text}],
                }
            )
    if components:
        template["components"] = components
    return {"type": "template", "template": template}


def interactive_message(interactive: Interactive) -> dict[str, Any]:
    body: dict[str, Any] = {"body": {"text": interactive.body}}
    if interactive.header:
        body["header"] = {"type": "text", "text": interactive.header}
    if interactive.footer:
        body["footer"] = {"text": interactive.footer}
    if interactive.buttons:
        body["type"] = "button"
        body["action"] = {
            "buttons": [
                {"type": "reply", "reply": {"id": b.id, "title": b.title}}
                for b in interactive.buttons
            ]
        }
    else:
        body["type"] = "list"
        sections = []
        for section in interactive.sections:
            rows = []
            for row in section.rows:
                entry = {"id": row.id, "title": row.title}
                if row.description:
                    entry["description"] = row.description
                rows.append(entry)
            sections.append({**({"title": section.title} if section.title else {}), "rows": rows})
        body["action"] = {"button": interactive.button, "sections": sections}
    return {"type": "interactive", "interactive": body}


def reaction_message(target: str, emoji: str) -> dict[str, Any]:
    """`emoji` "" takes the reaction back."""
    return {"type": "reaction", "reaction": {"message_id": target, "emoji": emoji}}
