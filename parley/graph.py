"""The one Graph API client: WhatsApp Cloud API sends (every message type), media
(upload, URL, download), read receipts and typing, message templates, and phone number
registration.

A send goes to a `Recipient`: a phone number, a business-scoped user id (BSUID) or a
group, as Meta's 2026 Cloud API takes them.

One attempt per call. Failures become a `GraphError` that says whether trying again can
help; the caller owns the retry policy (the sender uses tenacity). Tokens go in the
Authorization header only and never into an error's text.
"""

import io
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import msgspec
import yarl

from parley.business_profile import BusinessProfile
from parley.standing import FIELDS as NUMBER_FIELDS
from parley.standing import NumberFields

_T = TypeVar("_T")

# Meta's codes that mean "not now" rather than "never" (Cloud API error codes page and
# the Graph API error handling guide). Everything else in a 4xx is permanent: 131047
# (Re-engagement message: over 24 hours since the customer last wrote), 190 (access
# token invalid or expired), 100 (invalid parameter), 136025 (verify code error), 131062
# (Business-scoped User ID (BSUID) recipients are not supported for this message: e.g.
# an authentication template sent to a BSUID; send it to the phone instead), 131009
# (Parameter value is not valid), 131053 (Media upload error: a file of the wrong type or
# size, or a media id Meta does not have), 132000 (Number of parameters does not match
# the expected number of params: a template sent without one of its variables), 132001
# (Template does not exist in that language, or is not approved)...
RATE_LIMIT_CODES = frozenset(
    {
        4,  # API Too Many Calls: the app's Graph API call rate limit
        80007,  # Rate limit issues: the WhatsApp Business Account's rate limit
        130429,  # Rate limit hit: Cloud API message throughput for the number reached
        131056,  # (Business Account, Consumer Account) pair rate limit hit
    }
)
TRANSIENT_CODES = frozenset(
    {
        1,  # API Unknown: possibly a temporary issue due to downtime
        2,  # API Service: temporary, due to downtime or overload
        131000,  # Something went wrong: unknown error, often a passing server problem
        131016,  # Service unavailable: a service is temporarily unavailable
        133004,  # Server temporarily unavailable (registration)
    }
)
RETRYABLE_CODES = RATE_LIMIT_CODES | TRANSIENT_CODES

# A title is for a log line or an agent's screen; a server can send a novel.
TITLE_MAX = 300
# Any real answer is a few hundred bytes; more is not a Graph API answer.
BODY_MAX = 1024 * 1024
# A page of templates asked for at once, and the most pages followed (Meta allows a
# business account a few thousand templates: a longer list is a server going round).
TEMPLATES_PAGE = 100
TEMPLATES_MAX_PAGES = 500
TEMPLATE_FIELDS = "id,name,language,status,category,components"
DOWNLOAD_CHUNK = 64 * 1024


class Recipient(msgspec.Struct, frozen=True):
    """Whom a message goes to: the customer's phone number (`wa_id`), else their
    business-scoped user id (BSUID, e.g. "US.13491208655302741918"), else a group id.

    When both the phone and the BSUID are known, the phone is used (Meta: `to` takes
    precedence over `recipient`, so only `to` is sent)."""

    phone: str | None = None
    user_id: str | None = None
    group_id: str | None = None

    def request_fields(self) -> dict[str, str]:
        """The fields naming the recipient in a `POST /{phone_number_id}/messages` body;
        ValueError when it has no phone, BSUID or group id."""
        if self.phone:
            return {"recipient_type": "individual", "to": self.phone}
        if self.user_id:
            return {"recipient_type": "individual", "recipient": self.user_id}
        if self.group_id:
            return {"recipient_type": "group", "to": self.group_id}
        raise ValueError("a recipient needs a phone, a user_id (BSUID) or a group_id")


class GraphError(Exception):
    """A Graph API call that did not succeed.

    `status` is None when no answer came (timeout, connection failure). `code` is Meta's
    `error.code`. `title` is for humans: `error_data.details`, else `error.message`.
    `retryable`: a later attempt of the same call can succeed (5xx, timeouts, connection
    failures, rate limits); otherwise it cannot (bad token, bad request, closed window).
    """

    def __init__(
        self,
        status: int | None,
        code: int | None,
        title: str,
        retryable: bool,
        *,
        summary: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.title = title
        self.retryable = retryable
        # str(): "131047 Re-engagement message (HTTP 400)", short enough for a log line.
        parts = [str(code)] if code is not None else []
        parts.append(summary or title)
        if status is not None:
            parts.append(f"(HTTP {status})")
        super().__init__(" ".join(parts))


class MediaInfo(msgspec.Struct, frozen=True):
    """A media id's short-lived download URL (Meta: valid for 5 minutes, fetched with
    the same bearer token) and what the file is."""

    url: str
    mime_type: str
    sha256: str
    file_size: int


class TemplateDefinition(msgspec.Struct, frozen=True):
    """A message template as the business account's `message_templates` list gives it:
    `components` as Meta sends them (HEADER with `format`, BODY with {{1}}..{{n}} in
    `text`, FOOTER, BUTTONS with QUICK_REPLY, URL and PHONE_NUMBER buttons)."""

    name: str
    language: str
    status: str
    category: str
    components: list[dict[str, Any]] = msgspec.field(default_factory=list)
    id: str | None = None


class _ErrorData(msgspec.Struct):
    details: str | None = None


class _Error(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: int | None = None
    error_data: _ErrorData | None = None
    is_transient: bool | None = None
    fbtrace_id: str | None = None


class _ErrorBody(msgspec.Struct):
    error: _Error


class _MessageId(msgspec.Struct):
    id: str


class _SendAnswer(msgspec.Struct):
    messages: list[_MessageId]


class _Success(msgspec.Struct):
    success: bool


class _MediaAnswer(msgspec.Struct):
    url: str
    mime_type: str
    sha256: str
    file_size: int | str  # Meta's examples show both


class _Cursors(msgspec.Struct):
    before: str | None = None
    after: str | None = None


class _Paging(msgspec.Struct):
    cursors: _Cursors | None = None
    next: str | None = None


class _Template(msgspec.Struct):
    name: str
    language: str
    status: str = ""
    category: str = ""
    components: list[dict[str, Any]] = msgspec.field(default_factory=list)
    id: str | None = None


class _TemplatePage(msgspec.Struct):
    data: list[_Template]
    paging: _Paging | None = None


class TemplateCreated(msgspec.Struct, frozen=True):
    """Meta's answer to a template submitted for review."""

    id: str
    status: str  # PENDING, or APPROVED/REJECTED when decided at once
    category: str


class _Profiles(msgspec.Struct):
    data: list[BusinessProfile]


class _UploadSession(msgspec.Struct):
    id: str


class _UploadHandle(msgspec.Struct):
    h: str


_error_decoder = msgspec.json.Decoder(_ErrorBody)
_send_decoder = msgspec.json.Decoder(_SendAnswer)
_success_decoder = msgspec.json.Decoder(_Success)
_id_decoder = msgspec.json.Decoder(_MessageId)
_media_decoder = msgspec.json.Decoder(_MediaAnswer)
_template_page_decoder = msgspec.json.Decoder(_TemplatePage)
_template_created_decoder = msgspec.json.Decoder(TemplateCreated)
_profiles_decoder = msgspec.json.Decoder(_Profiles)
_upload_session_decoder = msgspec.json.Decoder(_UploadSession)
_upload_handle_decoder = msgspec.json.Decoder(_UploadHandle)
_number_decoder = msgspec.json.Decoder(NumberFields)
PROFILE_FIELDS = "about,address,description,email,profile_picture_url,websites,vertical"
# The fields `send` adds to a message object; a message naming them is refused.
ENVELOPE = frozenset({"messaging_product", "recipient_type", "to", "recipient", "context"})


class GraphClient:
    """Calls `base_url` (e.g. "https://graph.facebook.com/v21.0") on `session`.

    `timeout_s` bounds a whole call; a media upload or download is bounded by
    `timeout_s` per read or write instead, so a large file on a slow link is not cut
    short while it still moves."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, *, timeout_s: float = 10.0
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout_s, sock_connect=timeout_s, sock_read=timeout_s
        )

    # Messages

    async def send(
        self,
        phone_number_id: str,
        token: str,
        to: Recipient,
        message: Mapping[str, Any],
        *,
        reply_to: str | None = None,
    ) -> str:
        """Sends one message object, e.g. `{"type": "image", "image": {"id": media_id,
        "caption": "..."}}`, `{"type": "interactive", "interactive": {...}}`, `{"type":
        "reaction", "reaction": {"message_id": wamid, "emoji": "👍"}}`, adding
        `messaging_product`, the recipient's fields and, with `reply_to` (a wamid), the
        `context` that quotes it. Returns the wamid.

        ValueError, before any request, when `to` names no one or `message` has no
        `type` with its object, or names a field this adds."""
        kind = message.get("type")
        if not isinstance(kind, str) or not kind or kind not in message:
            raise ValueError(
                "a message needs a type and its object, e.g. {'type': 'image', 'image': {...}}"
            )
        clash = ENVELOPE & message.keys()
        if clash:
            raise ValueError(f"a message must not name {sorted(clash)}: send() adds them")
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            **to.request_fields(),
            **message,
        }
        if reply_to is not None:
            if not reply_to:
                raise ValueError("reply_to must be the wamid of the message quoted")
            payload["context"] = {"message_id": reply_to}
        return await self._send(phone_number_id, token, payload)

    async def send_text(
        self,
        phone_number_id: str,
        token: str,
        to: Recipient,
        text: str,
        *,
        reply_to: str | None = None,
    ) -> str:
        """Sends a free-form text (only inside the 24-hour window); returns the wamid.
        ValueError, before any request, when `to` names no one."""
        return await self.send(
            phone_number_id,
            token,
            to,
            {"type": "text", "text": {"preview_url": False, "body": text}},
            reply_to=reply_to,
        )

    async def send_template(
        self,
        phone_number_id: str,
        token: str,
        to: Recipient,
        name: str,
        language: str,
        *,
        components: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """Sends an approved template (allowed outside the window); returns the wamid.
        `components` fill its variables as Meta documents them: `{"type": "header",
        "parameters": [{"type": "image", "image": {"id": ...}}]}`, `{"type": "body",
        "parameters": [{"type": "text", "text": ...}, ...]}`, `{"type": "button",
        "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": ...}]}`.
        ValueError, before any request, when `to` names no one."""
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components is not None:
            template["components"] = [dict(component) for component in components]
        return await self.send(
            phone_number_id, token, to, {"type": "template", "template": template}
        )

    async def mark_read(
        self, phone_number_id: str, token: str, wamid: str, *, typing: bool = False
    ) -> None:
        """Marks a received message (and the earlier ones) read: the customer sees blue
        ticks. `typing` also shows a typing indicator (until the next send, or 25 s)."""
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": wamid,
        }
        if typing:
            payload["typing_indicator"] = {"type": "text"}
        await self._succeed(phone_number_id, "messages", token, payload, what="mark as read")

    # Media

    async def upload(
        self, phone_number_id: str, token: str, data: bytes, mime_type: str, filename: str
    ) -> str:
        """Uploads a file for the number to send (multipart `messaging_product`, `type`,
        `file`, as Meta documents); returns its media id. Meta refuses a type or size
        it does not take with 131053 (see `media_problem` to check before)."""
        if not mime_type:
            raise ValueError("an upload needs its MIME type")
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime_type)
        # A stream, not bytes: aiohttp warns that a large bytes body blocks the loop.
        form.add_field(
            "file", io.BytesIO(data), filename=filename or "file", content_type=mime_type
        )
        url = f"{self._base}/{quote(phone_number_id, safe='')}/media"
        status, body = await self._call("POST", url, token, data=form, streaming=True)
        try:
            media_id = _id_decoder.decode(body).id
        except msgspec.DecodeError:
            media_id = ""
        if not media_id:
            raise GraphError(status, None, "unexpected answer to an upload", False)
        return media_id

    async def media(
        self, media_id: str, token: str, *, phone_number_id: str | None = None
    ) -> MediaInfo:
        """The media's download URL (valid for 5 minutes; ask again for a new one),
        MIME type, SHA-256 and size. With `phone_number_id`, Meta answers only when the
        media belongs to that number."""
        url = f"{self._base}/{quote(media_id, safe='')}"
        params = {"phone_number_id": phone_number_id} if phone_number_id else None
        status, body = await self._call("GET", url, token, params=params)
        try:
            answer = _media_decoder.decode(body)
            size = int(answer.file_size)
        except (msgspec.DecodeError, ValueError):
            raise GraphError(status, None, "unexpected answer to a media lookup", False) from None
        if not answer.url or size < 0:
            raise GraphError(status, None, "unexpected answer to a media lookup", False)
        return MediaInfo(answer.url, answer.mime_type, answer.sha256, size)

    async def download(self, url: str, token: str | None, *, max_bytes: int) -> bytes:
        """The file at a media URL (from `media`), fetched with the bearer token, read as
        it streams and refused past `max_bytes` (not retryable: it will not shrink).
        `token` None: a public URL (a profile picture's), fetched without one, since
        the token must never reach a server Meta's answer merely names.

        An expired or refused URL is a GraphError with its HTTP status (404 once
        expired, 401/403 refused), not retryable as such: ask `media` for a new URL."""
        if max_bytes < 0:
            raise ValueError("max_bytes cannot be negative")
        if urlsplit(url).scheme not in ("http", "https"):
            raise GraphError(None, None, "a media URL must be http(s)", False)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with self._session.get(
                url, headers=headers, timeout=self._stream_timeout
            ) as response:
                status, reason = response.status, response.reason or ""
                if not 200 <= status < 300:
                    raise _error_from(status, reason, await _read_capped(response), token or "")
                declared = response.content_length
                if declared is not None and declared > max_bytes:
                    raise _too_large(status, max_bytes)
                data = bytearray()
                async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                    data += chunk
                    if len(data) > max_bytes:
                        raise _too_large(status, max_bytes)
        except TimeoutError:
            raise GraphError(None, None, "timeout", True) from None
        except (aiohttp.ClientError, OSError):
            raise GraphError(None, None, "connection failed", True) from None
        return bytes(data)

    # Templates

    async def templates(self, waba_id: str, token: str) -> list[TemplateDefinition]:
        """Every message template of the business account, following the pages to the
        end; components as Meta sends them."""
        url = f"{self._base}/{quote(waba_id, safe='')}/message_templates"
        found: list[TemplateDefinition] = []
        after: str | None = None
        seen: set[str] = set()
        for _ in range(TEMPLATES_MAX_PAGES):
            params = {"fields": TEMPLATE_FIELDS, "limit": str(TEMPLATES_PAGE)}
            if after is not None:
                params["after"] = after
            status, body = await self._call("GET", url, token, params=params)
            try:
                page = _template_page_decoder.decode(body)
            except msgspec.DecodeError:
                raise GraphError(
                    status, None, "unexpected answer to a template list", False
                ) from None
            found.extend(
                TemplateDefinition(
                    item.name, item.language, item.status, item.category, item.components, item.id
                )
                for item in page.data
            )
            paging = page.paging
            after = paging.cursors.after if paging and paging.cursors else None
            if not paging or not paging.next or not after:
                return found
            if after in seen:
                break
            seen.add(after)
        # Returning what was read would pass a part of the list for all of it.
        raise GraphError(None, None, "the template list did not end", False)

    async def create_template(
        self, waba_id: str, token: str, template: Mapping[str, Any]
    ) -> TemplateCreated:
        """Submits a template (`name`, `language`, `category`, `components` with their
        examples) to the business account for Meta's review."""
        status, body = await self._post(waba_id, "message_templates", token, dict(template))
        return _decoded(_template_created_decoder, status, body, "a template submission")

    async def delete_template(
        self, waba_id: str, token: str, name: str, *, template_id: str | None = None
    ) -> None:
        """Deletes a template from the business account: with `template_id` only that
        language's, without it every language of the name (Meta's `hsm_id` rule)."""
        url = f"{self._base}/{quote(waba_id, safe='')}/message_templates"
        params = {"name": name} | ({"hsm_id": template_id} if template_id else {})
        status, body = await self._call("DELETE", url, token, params=params)
        _succeeded(status, body, "template deletion")

    # The number: its business profile and its standing

    async def business_profile(self, phone_number_id: str, token: str) -> BusinessProfile:
        url = f"{self._base}/{quote(phone_number_id, safe='')}/whatsapp_business_profile"
        status, body = await self._call("GET", url, token, params={"fields": PROFILE_FIELDS})
        profiles = _decoded(_profiles_decoder, status, body, "a business profile read")
        return profiles.data[0] if profiles.data else BusinessProfile()

    async def update_business_profile(
        self, phone_number_id: str, token: str, fields: Mapping[str, object]
    ) -> None:
        """Changes the fields given (see parley/business_profile.py for Meta's limits);
        `profile_picture_handle` (from `upload_resumable`) sets the picture."""
        await self._succeed(
            phone_number_id,
            "whatsapp_business_profile",
            token,
            {"messaging_product": "whatsapp", **fields},
            what="business profile update",
        )

    async def upload_resumable(
        self, app_id: str, token: str, data: bytes, mime_type: str, file_name: str
    ) -> str:
        """Uploads a file through Meta's Resumable Upload API (a session on the app,
        then the bytes from offset 0, authorized as `OAuth`); returns the file handle a
        profile picture is set with."""
        url = f"{self._base}/{quote(app_id, safe='')}/uploads"
        params = {"file_name": file_name, "file_length": str(len(data)), "file_type": mime_type}
        status, body = await self._call("POST", url, token, params=params)
        session = _decoded(_upload_session_decoder, status, body, "an upload session")
        # Meta's session ids carry their own signature ("upload:...?sig=..."): they go
        # into the URL exactly as given, so only their shape is checked.
        if not session.id.startswith("upload:") or any(c in session.id for c in "/# \t\r\n"):
            raise GraphError(status, None, "unexpected answer to an upload session", False)
        status, body = await self._call(
            "POST",
            yarl.URL(f"{self._base}/{session.id}", encoded=True),
            token,
            data=data,
            headers={"file_offset": "0", "Content-Type": "application/octet-stream"},
            auth="OAuth",
            streaming=True,
        )
        return _decoded(_upload_handle_decoder, status, body, "an upload").h

    async def number_fields(self, phone_number_id: str, token: str) -> NumberFields:
        """The number's verified name, name review, quality rating, messaging limit and
        Official Business Account status."""
        url = f"{self._base}/{quote(phone_number_id, safe='')}"
        status, body = await self._call(
            "GET", url, token, params={"fields": ",".join(NUMBER_FIELDS)}
        )
        return _decoded(_number_decoder, status, body, "a phone number read")

    # Registration

    async def request_code(
        self, phone_number_id: str, token: str, method: str, language: str
    ) -> None:
        """Has Meta send a verification code to the number by "SMS" or "VOICE"."""
        await self._succeed(
            phone_number_id,
            "request_code",
            token,
            {"code_method": method, "language": language},
        )

    async def verify_code(self, phone_number_id: str, token: str, code: str) -> None:
        await self._succeed(phone_number_id, "verify_code", token, {"code": code})

    async def register(self, phone_number_id: str, token: str, pin: str) -> None:
        """Registers the verified number for the Cloud API with its two-step PIN."""
        await self._succeed(
            phone_number_id, "register", token, {"messaging_product": "whatsapp", "pin": pin}
        )

    # Internals

    async def _send(self, phone_number_id: str, token: str, payload: dict[str, Any]) -> str:
        status, body = await self._post(phone_number_id, "messages", token, payload)
        try:
            answer = _send_decoder.decode(body)
        except msgspec.DecodeError:
            answer = None
        if answer is None or not answer.messages or not answer.messages[0].id:
            # It may well have been sent: trying again could send it twice.
            raise GraphError(status, None, "unexpected answer to a send", False)
        return answer.messages[0].id

    async def _succeed(
        self,
        phone_number_id: str,
        edge: str,
        token: str,
        payload: dict[str, Any],
        *,
        what: str | None = None,
    ) -> None:
        status, body = await self._post(phone_number_id, edge, token, payload)
        _succeeded(status, body, what or edge)

    async def _post(
        self, object_id: str, edge: str, token: str, payload: dict[str, Any]
    ) -> tuple[int, bytes]:
        """POST `payload` as JSON to an object's edge (a number's, a business
        account's): the status and body of a 2xx answer; GraphError for anything else."""
        url = f"{self._base}/{quote(object_id, safe='')}/{edge}"
        return await self._call(
            "POST",
            url,
            token,
            data=msgspec.json.encode(payload),
            headers={"Content-Type": "application/json"},
        )

    async def _call(
        self,
        method: str,
        url: str | yarl.URL,
        token: str,
        *,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        streaming: bool = False,
        auth: str = "Bearer",
    ) -> tuple[int, bytes]:
        """The status and body of a 2xx answer; raises GraphError for anything else.
        `streaming`: bounded per read or write, not as a whole (an upload)."""
        headers = {"Authorization": f"{auth} {token}", **(headers or {})}
        # `from None` throughout: aiohttp's exceptions can carry the request's headers.
        try:
            async with self._session.request(
                method,
                url,
                data=data,
                params=params,
                headers=headers,
                timeout=self._stream_timeout if streaming else self._timeout,
            ) as response:
                body = await _read_capped(response)
                status, reason = response.status, response.reason or ""
        except TimeoutError:  # aiohttp's own timeout errors are TimeoutErrors too
            raise GraphError(None, None, "timeout", True) from None
        except (aiohttp.ClientError, OSError):
            raise GraphError(None, None, "connection failed", True) from None
        if 200 <= status < 300:
            return status, body
        raise _error_from(status, reason, body, token)


def _decoded(decoder: msgspec.json.Decoder[_T], status: int, body: bytes, what: str) -> _T:
    try:
        return decoder.decode(body)
    except msgspec.DecodeError:
        raise GraphError(status, None, f"unexpected answer to {what}", False) from None


def _succeeded(status: int, body: bytes, what: str) -> None:
    try:
        if _success_decoder.decode(body).success:
            return
    except msgspec.DecodeError:
        pass
    raise GraphError(status, None, f"{what} did not succeed", False)


def _too_large(status: int, max_bytes: int) -> GraphError:
    return GraphError(status, None, f"the media is larger than {max_bytes} bytes", False)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    while len(body) < BODY_MAX:
        chunk = await response.content.read(BODY_MAX - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


def _error_from(status: int, reason: str, body: bytes, token: str) -> GraphError:
    """Classifies an error answer, in Meta's shape or not (a proxy's 502 page)."""
    try:
        error: _Error | None = _error_decoder.decode(body).error
    except msgspec.DecodeError:  # not JSON, or not Meta's shape
        error = None
    code = error.code if error else None
    # A server may echo what it was sent: the token goes before anything is cut short.
    message = _clean(error.message, token) if error else ""
    details = _clean(error.error_data.details, token) if error and error.error_data else ""
    retryable = (
        status >= 500
        or status == 429
        or code in RETRYABLE_CODES
        or bool(error and error.is_transient)
    )
    title = details or message or _clean(reason, token) or f"HTTP {status}"
    summary = _without_code(message, code) or title
    return GraphError(status, code, title, retryable, summary=summary)


def _clean(text: str | None, token: str) -> str:
    """One short line without the token in it."""
    text = " ".join((text or "").split())
    if token:
        text = text.replace(token, "***")
        while token in text:  # a replacement can form a new one at its edges
            text = text.replace(token, "")
    return text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1] + "…"


def _without_code(message: str, code: int | None) -> str:
    # Meta's message is "(#131047) Re-engagement message"; the code is shown on its own.
    prefix = f"(#{code}) "
    return message[len(prefix) :] if code is not None and message.startswith(prefix) else message
