"""What an agent reads of Meta's payloads: a message's text, a failed status's error."""

from typing import Any

# WhatsApp's own limit on a text body.
TEXT_MAX = 4096


def message_text(kind: str, message: dict[str, Any]) -> str | None:
    """Its text, a caption or file name, the button or list row chosen, a place, or a
    shared contact's name; None for what has no text (a sticker)."""
    body = message.get(kind)
    text: object = None
    if kind == "contacts" and isinstance(body, list) and body:
        first = body[0] if isinstance(body[0], dict) else {}
        name = first.get("name")
        text = name.get("formatted_name") if isinstance(name, dict) else None
    if not isinstance(body, dict):
        return _clip(text)
    if kind == "text":
        text = body.get("body")
    elif kind in ("image", "video", "document", "audio", "sticker"):
        text = body.get("caption") or body.get("filename")
    elif kind == "button":
        text = body.get("text")
    elif kind == "interactive":
        chosen = body.get("button_reply") or body.get("list_reply") or {}
        text = chosen.get("title") if isinstance(chosen, dict) else None
    elif kind == "location":
        text = body.get("name") or body.get("address")
    elif kind == "reaction":
        text = body.get("emoji")
    elif kind == "order":
        text = body.get("text")
    elif kind == "system":
        text = body.get("body")
    return _clip(text)


def _clip(text: object) -> str | None:
    return text[:TEXT_MAX] if isinstance(text, str) and text else None


def status_error(errors: list[dict[str, Any]]) -> str | None:
    """The first error of a failed status as "<code> <title>"."""
    if not errors or not isinstance(errors[0], dict):
        return None
    first = errors[0]
    title = first.get("title") or first.get("message") or ""
    return f"{first.get('code', '')} {title}".strip() or None
