"""A local stand-in for the Graph API: the Cloud API's messages edge (every message
type, read receipts and typing), media (upload, URL, download), message templates and
phone number registration, answering as Meta documents them, for tests and `make run`.

Sends go to a phone (`to`), a business-scoped user id (`recipient`, a BSUID) or a group
(`recipient_type: "group"`, `to`), as in Meta's 2026 Cloud API. Every accepted send is
kept in `sent`, every read receipt in `reads`; a send is checked in Meta's documented
shape and limits (100, 131009), a media id against the media the stand-in has (131053),
a template against the number's business account's templates when it has been given
them (132001, 132000, 132012). Queued faults play Meta's errors, 5xx answers and slow
answers; delivery statuses come back as signed webhooks in Meta's 2026 shape
(`recipient_id`, `recipient_user_id`, group participants). `users` (phone -> BSUID) and
`groups` (group id -> participants) say what Meta would know about whom.

Media: uploads are checked against Meta's types and sizes; `GET /{media-id}` gives a
download URL on the stand-in that needs the bearer token and expires after
`media_url_ttl_s` (404 afterwards, as Meta's CDN answers); `seed_media` plays a
customer's media for inbound webhooks. Tests can hold a media id's lookups
(`hold_media`), hand out a URL that has already expired (`expire_next_media_url`), and
read what the media edges were asked (`media_lookups`, `media_downloads`).

Onboarding (devstack.standin_onboarding, held as `StandIn.onboarding`): business
profiles, resumable uploads, a number's fields (`GET /{phone-number-id}`), templates
created and deleted, and controls that play Meta's reviews as signed webhooks.

Humans drive it over /_standin/* (sent messages, reads, the last verification code,
faults to queue, users, groups, media and its URLs, templates, onboarding).

`python -m devstack.graph_standin [--port N] [--webhook-url URL]` serves it with the
numbers and tokens of PARLEY_CHANNELS_FILE; point PARLEY_GRAPH_URL at
http://127.0.0.1:N/v21.0.
"""

import argparse
import asyncio
import base64
import hashlib
import logging
import os
import re
import secrets
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import aiohttp
import msgspec
from aiohttp import BodyPartReader, web

from devstack.samples import webhook
from devstack.settings import DevSettings, dev_settings_from_env
from devstack.signing import sign
from parley.channels import ChannelFileError, load_channels
from parley.graph import Recipient
from parley.logs import setup_logging
from parley.runtime import serve
from parley.settings import SettingsError, settings_from_env
from parley.whatsapp import CAPTION_MAX, CAPTIONED, MEDIA_RULES, animated_webp, media_problem

if TYPE_CHECKING:  # it builds on this module, which imports it only when asked
    from devstack.standin_onboarding import Onboarding

log = logging.getLogger(__name__)

AUTO_STATUSES = ("sent", "delivered", "read")
STATUS_GAP_S = 0.005  # between auto statuses: in order, yet quick for tests
WEBHOOK_TIMEOUT_S = 10.0
TEXT_MAX = 4096  # Meta's limit on a text message body
MEDIA_URL_TTL_S = 300.0  # Meta: a media URL is good for 5 minutes
# The largest request body: a 100 MB document and the multipart around it.
UPLOAD_MAX = MEDIA_RULES["document"].max_bytes + 1024 * 1024
MEDIA_PATH = "/whatsapp_business/attachments/"  # as Meta's lookaside.fbsbx.com URLs
# Meta's interactive limits (Cloud API messages reference): reply buttons and lists.
BUTTONS_MAX = 3
BUTTON_ID_MAX = 256
BUTTON_TITLE_MAX = 20
BUTTON_BODY_MAX = 1024
LIST_BODY_MAX = 4096
HEADER_TEXT_MAX = 60
FOOTER_TEXT_MAX = 60
LIST_BUTTON_MAX = 20
SECTIONS_MAX = 10
ROWS_MAX = 10  # across all sections
ROW_ID_MAX = 200
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
SECTION_TITLE_MAX = 24
HYDRATED_BODY_MAX = 1024  # a template's body once its variables are filled in
INTERACTIVE_TYPES = frozenset(
    {
        "button",
        "list",
        "cta_url",
        "flow",
        "product",
        "product_list",
        "catalog_message",
        "location_request_message",
        "address_message",
    }
)
MEDIA_FIELDS: Mapping[str, frozenset[str]] = {
    "image": frozenset({"id", "link", "caption"}),
    "video": frozenset({"id", "link", "caption"}),
    "document": frozenset({"id", "link", "caption", "filename"}),
    "audio": frozenset({"id", "link", "voice"}),
    "sticker": frozenset({"id", "link"}),
}
# A template's button type -> the `sub_type` a send names it by.
BUTTON_SUB_TYPES = {
    "URL": "url",
    "QUICK_REPLY": "quick_reply",
    "COPY_CODE": "copy_code",
    "FLOW": "flow",
    "CATALOG": "catalog",
    "MPM": "mpm",
    "OTP": "url",
}
PARAMETER_TYPES = frozenset(
    {
        "text",
        "currency",
        "date_time",
        "image",
        "video",
        "document",
        "location",
        "payload",
        "coupon_code",
        "action",
    }
)
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
TEMPLATES_PAGE = 25  # Meta's default `limit`
TEMPLATE_FIELDS = ("id", "name", "parameter_format", "components", "language", "status", "category")
MESSAGE_TYPES = frozenset(
    {
        "audio",
        "contacts",
        "document",
        "image",
        "interactive",
        "location",
        "reaction",
        "sticker",
        "template",
        "text",
        "video",
    }
)
# A BSUID: a country code, a period, up to 128 alphanumerics; a parent BSUID has "ENT."
# after the country code (Meta's business-scoped user ids page).
BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")
# Random bytes per wamid: none a multiple of 3, so every one ends in "=" or "==".
WAMID_BYTES = (28, 29, 31, 32, 34, 35)
_EMPTY: Mapping[str, str] = MappingProxyType({})
# A group's participants: (phone, when Meta may show it; BSUID).
Participants = Sequence[tuple[str | None, str]]
Edge = Callable[[web.Request, str], Awaitable[web.Response]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Titles and details as Meta words them (Cloud API error codes; the verify_code reference
# names 136025 "Verify code error", its details here are the stand-in's own).
KNOWN_ERRORS: dict[int, tuple[str, str]] = {
    4: ("API Too Many Calls", "The app has reached its API call rate limit."),
    100: (
        "Invalid parameter",
        "The request included one or more unsupported or misspelled parameters.",
    ),
    80007: ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131000: ("Something went wrong", "Message failed to send due to an unknown error."),
    131009: ("Parameter value is not valid", "One or more parameter values are invalid."),
    131053: ("Media upload error", "Unable to upload the media used in the message."),
    132000: (
        "Number of parameters does not match the expected number of params",
        "The number of variable parameter values included in the request did not match the"
        " number of variable parameters defined in the template.",
    ),
    132001: (
        "Template name does not exist in the translation",
        "The template does not exist in the specified language or the template has not"
        " been approved.",
    ),
    132005: ("Template Hydrated Text Too Long", "Translated text is too long."),
    132012: (
        "Parameter format does not match format in the created template",
        "Variable parameter values formatted incorrectly.",
    ),
    132015: (
        "Template is Paused",
        "Template is paused due to low quality so it cannot be sent in a template message.",
    ),
    132016: (
        "Template is Disabled",
        "Template has been paused too many times due to low quality and is now permanently"
        " disabled.",
    ),
    131026: ("Message undeliverable", "Message Undeliverable."),
    131062: (
        "Business-scoped User ID (BSUID) recipients are not supported for this message",
        "Business-scoped User ID (BSUID) recipients are not supported for this message.",
    ),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer"
        " last replied to this number.",
    ),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone"
        " number to the same phone number in a short period of time.",
    ),
    136025: ("Verify code error", "The code does not match the last code sent to this number."),
}
# Meta's answer to an access token it cannot use (HTTP 401, code 190).
OAUTH_REFUSAL = "Invalid OAuth access token - Cannot parse access token"


class Fault(msgspec.Struct, frozen=True):
    """One answer to play instead of the normal one, after `delay_s` (more than the
    client's timeout simulates a timeout). `code` None: a non-Meta body, as a proxy's
    502 page. A 2xx status: the call is carried out, and answered `delay_s` late (sent,
    yet timed out for the caller). `title` and `details` replace Meta's wording."""

    status: int = 400
    code: int | None = None
    title: str = ""
    delay_s: float = 0.0
    details: str | None = None


class SentMessage(msgspec.Struct, frozen=True):
    """An accepted send. `to`, `recipient` and `recipient_type` are the request's
    fields naming the recipient, as sent: `to` is the phone (or the group id for a group
    send) and None for a send to a BSUID only; `recipient` is the BSUID, if given."""

    phone_number_id: str
    to: str | None
    type: str
    body: dict[str, Any]  # the request JSON as sent
    wamid: str
    at: float
    recipient: str | None = None
    recipient_type: str = "individual"

    @property
    def target(self) -> Recipient:
        """Whom it went to: a group, else the phone, else the BSUID (the phone wins
        over a BSUID given with it, which is kept for the statuses)."""
        if self.recipient_type == "group":
            return Recipient(group_id=self.to)
        return Recipient(phone=self.to, user_id=self.recipient)


class ReadReceipt(msgspec.Struct, frozen=True):
    """A `status: read` request: the message marked read, and whether the typing
    indicator was asked for with it."""

    phone_number_id: str
    message_id: str
    typing: bool
    at: float


class StoredMedia(msgspec.Struct, frozen=True):
    """A file the stand-in has: uploaded by a number (`phone_number_id`), or seeded as a
    customer's (None: any of the stand-in's tokens may fetch it)."""

    id: str
    mime_type: str
    sha256: str
    file_size: int
    data: bytes
    phone_number_id: str | None = None
    filename: str | None = None


class Template(msgspec.Struct, frozen=True):
    """A message template of a business account, in the `message_templates` list's
    shape: `components` as Meta gives them (HEADER with `format` and maybe {{1}} in
    `text`; BODY with {{1}}..{{n}}, or {{name}}s when `parameter_format` is NAMED;
    FOOTER; BUTTONS with QUICK_REPLY, URL (a {{1}} in `url`), PHONE_NUMBER...).
    `id` "": one derived from the name and language."""

    name: str
    language: str
    components: list[dict[str, Any]] = msgspec.field(default_factory=list)
    status: str = "APPROVED"
    category: str = "UTILITY"
    id: str = ""
    parameter_format: str = "POSITIONAL"

    def listed(self, fields: Iterable[str]) -> dict[str, Any]:
        """The template as `GET /{waba-id}/message_templates` shows it: the fields
        asked for, and always its id."""
        full: dict[str, Any] = {
            "id": self.id or template_id(self.name, self.language),
            "name": self.name,
            "parameter_format": self.parameter_format,
            "components": self.components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
        }
        wanted = {"id", *fields}
        return {key: value for key, value in full.items() if key in wanted}


class _Refusal(NamedTuple):
    """Meta's error for a request: its code, `error_data.details` and, if not the
    code's title, the `message`."""

    code: int
    details: str
    message: str | None = None


def template_id(name: str, language: str) -> str:
    """A stable, Meta-looking (numeric) template id."""
    digest = hashlib.sha256(f"{name}\0{language}".encode()).hexdigest()
    return str(10**14 + int(digest[:12], 16) % (9 * 10**14))


def new_media_id() -> str:
    """A media id in Meta's style: 15 or 16 digits."""
    return str(10**14 + secrets.randbelow(9 * 10**15))


def meta_error(
    code: int, title: str, details: str | None = None, *, message: str | None = None
) -> dict[str, Any]:
    """A Graph API error body: {"error": {message, type, code, error_data, fbtrace_id}}."""
    error: dict[str, Any] = {
        "message": message or f"(#{code}) {title}",
        "type": "OAuthException",
        "code": code,
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
    return {"error": error}


def new_wamid() -> str:
    """A wamid in Meta's style: "wamid." and standard base64 (with "+", "/" and "="
    padding), e.g. "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSQzRGMUE5RTA2QjdEMjM4NTlFAA==".
    Opaque: nothing should decode it."""
    size = WAMID_BYTES[secrets.randbelow(len(WAMID_BYTES))]
    return "wamid." + base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def status_webhook(
    phone_number_id: str,
    wamid: str,
    to: str | Recipient,
    state: str,
    timestamp: int,
    errors: list[dict[str, Any]] | None = None,
    *,
    users: Mapping[str, str] = _EMPTY,
    participants: Participants = (),
) -> dict[str, Any]:
    """A `statuses` webhook call as Meta sends it in 2026, for a message sent `to` a
    phone (a plain string is one), a BSUID or a group.

    - Phone: `recipient_id` is the phone, plus `recipient_user_id` when its BSUID is
      known (from `users`, else `to.user_id`), not on `failed`.
    - BSUID: `recipient_user_id` only; the phone is not shown.
    - Group: `recipient_id` is the group id and `recipient_type` "group", one status per
      participant with `recipient_participant_id` (the phone, when known) and
      `recipient_participant_user_id` (on `failed` only when the phone is not known); no
      participants: one status without them.

    A value-level `contacts` array (`wa_id`, `user_id`) comes on sent, delivered and
    read (for a group: one per participant, on delivered and read only), never on
    `failed`. `pricing` (and the pre-v24 `conversation`) come on sent and delivered,
    not on read or failed. `errors` go on the status; `failed` without them gets 131026.
    """
    target = Recipient(phone=to) if isinstance(to, str) else to
    target.request_fields()  # ValueError when it names no one
    failed = state == "failed"
    if errors is None and failed:
        title, details = KNOWN_ERRORS[131026]
        errors = [
            {"code": 131026, "title": title, "message": title, "error_data": {"details": details}}
        ]
    common: dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(timestamp)}
    statuses: list[dict[str, Any]] = []
    contacts: list[dict[str, str]] = []
    if target.phone:
        status = {**common, "recipient_id": target.phone}
        user_id = users.get(target.phone) or target.user_id
        if user_id and not failed:
            status["recipient_user_id"] = user_id
        statuses.append(status)
        contacts.append({"wa_id": target.phone, **({"user_id": user_id} if user_id else {})})
    elif target.user_id:
        statuses.append({**common, "recipient_user_id": target.user_id})
        contacts.append({"user_id": target.user_id})
    else:
        group = {**common, "recipient_id": target.group_id, "recipient_type": "group"}
        for phone, user_id in participants:
            status = dict(group)
            if phone:
                status["recipient_participant_id"] = phone
            if not (failed and phone):
                status["recipient_participant_user_id"] = user_id
            statuses.append(status)
            if state in ("delivered", "read"):
                contacts.append({**({"wa_id": phone} if phone else {}), "user_id": user_id})
        if not statuses:
            statuses.append(group)
    key = f"{phone_number_id}:{target.phone or target.user_id or target.group_id}".encode()
    for status in statuses:
        if state in ("sent", "delivered"):
            status["conversation"] = {
                "id": hashlib.sha256(key).hexdigest()[:32],
                "origin": {"type": "service"},
            }
            status["pricing"] = {
                "billable": False,
                "pricing_model": "PMP",
                "type": "free_customer_service",
                "category": "service",
            }
        if errors is not None:
            status["errors"] = errors
    value: dict[str, Any] = {}
    if contacts and not failed:
        value["contacts"] = contacts
    value["statuses"] = statuses
    return webhook(phone_number_id, value)


class StandIn:
    """The stand-in's state. `tokens` and `app_secrets` map phone number ids to the
    access token it accepts and the app secret it signs webhooks with. `users` maps a
    phone to the customer's BSUID, `groups` a group id to its participants (phone or
    None, BSUID): what the status webhooks it posts can say about them.

    `wabas` maps a phone number id to its WhatsApp Business Account, `templates` a
    business account to its message templates: a template send from a number whose
    account has templates here is checked against them; one whose account has none
    here is taken as sent (the stand-in cannot check it). Media URLs expire after
    `media_url_ttl_s` seconds of `clock`. `verified_names` maps a number to the
    verified name its `GET /{phone-number-id}` shows."""

    def __init__(
        self,
        tokens: Mapping[str, str],
        *,
        webhook_url: str | None = None,
        app_secrets: Mapping[str, str] = _EMPTY,
        clock: Callable[[], float] = time.time,
        auto_statuses: Sequence[str] = (),
        users: Mapping[str, str] = _EMPTY,
        groups: Mapping[str, Participants] | None = None,
        wabas: Mapping[str, str] = _EMPTY,
        templates: Mapping[str, Sequence[Template]] | None = None,
        media_url_ttl_s: float = MEDIA_URL_TTL_S,
        verified_names: Mapping[str, str] = _EMPTY,
    ) -> None:
        self.tokens = dict(tokens)
        self.verified_names = dict(verified_names)
        self.wabas = dict(wabas)
        self.templates: dict[str, list[Template]] = {
            waba_id: list(known) for waba_id, known in (templates or {}).items()
        }
        self.media_url_ttl_s = media_url_ttl_s
        self.media: dict[str, StoredMedia] = {}
        self.reads: list[ReadReceipt] = []
        self._media_urls: dict[str, tuple[str, float]] = {}  # hash -> (media id, expiry)
        # What was asked of the media edges, in order: for tests to see when, and how often.
        self.media_lookups: list[str] = []  # media ids asked for a URL
        self.media_downloads: list[tuple[str, int]] = []  # (media id, HTTP status answered)
        self._media_holds: dict[str, asyncio.Event] = {}
        self._expire_next: set[str] = set()
        self.users = dict(users)
        self.groups: dict[str, list[tuple[str | None, str]]] = {
            group_id: list(participants) for group_id, participants in (groups or {}).items()
        }
        self.webhook_url = webhook_url
        self.app_secrets = dict(app_secrets)
        self.clock = clock
        self.auto_statuses = tuple(auto_statuses)
        self.sent: list[SentMessage] = []
        self.registered: set[str] = set()
        self._faults: dict[str, deque[Fault]] = {}
        self._codes: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @cached_property
    def onboarding(self) -> "Onboarding":
        """Profiles, uploads, number records and templates' reviews, and their controls."""
        from devstack.standin_onboarding import Onboarding

        return Onboarding(self)

    def fail_next(self, phone_number_id: str, *faults: Fault) -> None:
        """Queues faults; each call to the number's edges (messages, media upload,
        registration) takes the next one. A media id or a business account id in place
        of the number: its lookup or its template list takes them."""
        self._faults.setdefault(phone_number_id, deque()).extend(faults)

    def code_for(self, phone_number_id: str) -> str | None:
        """The last code "sent by SMS or voice" to the number."""
        return self._codes.get(phone_number_id)

    def seed_media(
        self,
        media_id: str,
        data: bytes,
        mime_type: str,
        *,
        phone_number_id: str | None = None,
        filename: str | None = None,
    ) -> StoredMedia:
        """Puts a file where `GET /{media_id}` finds it, as Meta has a customer's media
        before its webhook: a webhook's `image.id` (and so on) can then be fetched."""
        stored = StoredMedia(
            media_id,
            mime_type,
            hashlib.sha256(data).hexdigest(),
            len(data),
            bytes(data),
            phone_number_id,
            filename,
        )
        self.media[media_id] = stored
        return stored

    def expire_media_urls(self) -> int:
        """Every media URL handed out so far now answers 404, as after 5 minutes at
        Meta; a new one comes from `GET /{media-id}`. Returns how many there were."""
        count = len(self._media_urls)
        self._media_urls.clear()
        return count

    def hold_media(self, media_id: str) -> asyncio.Event:
        """Lookups of `media_id` (`GET /{media-id}`) wait until the event returned is set,
        as a slow Meta would: for tests that look at what happens before the file is had."""
        return self._media_holds.setdefault(media_id, asyncio.Event())

    def expire_next_media_url(self, media_id: str) -> None:
        """The next URL handed out for `media_id` has expired by the time it is used (404),
        as when more than `media_url_ttl_s` passes between the lookup and the download."""
        self._expire_next.add(media_id)

    def set_templates(self, waba_id: str, templates: Sequence[Template]) -> None:
        """The business account's templates, replacing what it had."""
        self.templates[waba_id] = list(templates)

    def templates_for(self, phone_number_id: str) -> list[Template] | None:
        """The templates of the number's business account; None when the stand-in
        has none for it (a template send is then not checked)."""
        waba_id = self.wabas.get(phone_number_id)
        return self.templates.get(waba_id) if waba_id is not None else None

    async def post_statuses(
        self,
        phone_number_id: str,
        wamid: str,
        to: str | Recipient,
        statuses: Sequence[str],
        errors: list[dict[str, Any]] | None = None,
        *,
        gap_s: float = 0.0,
    ) -> list[int]:
        """Posts one signed status webhook per status, in order; returns the HTTP statuses.

        `to` is whom the message went to: a phone (a plain string is one), a BSUID or a
        group, as in `status_webhook`; `users` and `groups` fill in what Meta knows.
        `errors` go on every status posted; a `failed` status without them gets 131026."""
        if self.webhook_url is None:
            raise ValueError("the stand-in has no webhook_url to post statuses to")
        if not isinstance(to, str):
            to.request_fields()  # ValueError when it names no one
        secret = self.app_secrets.get(phone_number_id)
        if secret is None:
            raise ValueError(f"no app secret for {phone_number_id}")
        answers: list[int] = []
        timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for index, state in enumerate(statuses):
                if index and gap_s:
                    await asyncio.sleep(gap_s)
                payload = status_webhook(
                    phone_number_id,
                    wamid,
                    to,
                    state,
                    int(self.clock()),
                    errors,
                    users=self.users,
                    participants=self._participants(to),
                )
                body = msgspec.json.encode(payload)
                headers = {
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": sign(body, secret),
                }
                async with session.post(self.webhook_url, data=body, headers=headers) as answer:
                    await answer.read()
                    answers.append(answer.status)
        return answers

    async def idle(self) -> None:
        """Until the statuses posted in the background so far are delivered."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Cancels the background posts (the app's cleanup does this)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # The Graph API edges, each wrapped by `edge`: the token and faults are checked first

    def edge(
        self,
        handle: Edge,
        *,
        key: str = "phone_number_id",
        authorize: Callable[[web.Request, str], web.Response | None] | None = None,
        read_body: bool = True,
    ) -> Handler:
        """`handle` as a route handler, behind the token check and the fault queue of
        the object named by the path's `key` (a phone number id, a media id or a
        business account id). `authorize`: the number's token by default."""
        check = authorize or self._authorize

        async def handler(request: web.Request) -> web.StreamResponse:
            object_id = request.match_info[key]
            if read_body:
                await request.read()  # now: after a delay the caller may be gone
            denied = check(request, object_id)
            if denied is not None:
                return denied
            queue = self._faults.get(object_id)
            fault = queue.popleft() if queue else None
            if fault is not None and fault.status >= 300:
                await asyncio.sleep(fault.delay_s)
                return _fault_answer(fault)
            answer = await handle(request, object_id)
            if fault is not None:  # a slow success: done now, answered late
                await asyncio.sleep(fault.delay_s)
            return answer

        return handler

    async def messages(self, request: web.Request, phone_number_id: str) -> web.Response:
        payload = await _json_object(request)
        if payload is not None and "status" in payload and "type" not in payload:
            return self._mark_read(phone_number_id, payload)
        problem = _message_problem(payload) or _content_problem(
            payload or {}, self.media, self.templates_for(phone_number_id)
        )
        if problem is not None:
            return _refused(problem)
        assert payload is not None  # _message_problem refuses None
        kind = str(payload["type"])
        sent = SentMessage(
            phone_number_id,
            payload.get("to") or None,
            kind,
            payload,
            new_wamid(),
            self.clock(),
            recipient=payload.get("recipient") or None,
            recipient_type=payload.get("recipient_type") or "individual",
        )
        self.sent.append(sent)
        log.info("message accepted", extra={"phone_number_id": phone_number_id, "type": kind})
        if self.auto_statuses and self.webhook_url:
            self._spawn(self._post_auto_statuses(phone_number_id, sent.wamid, sent.target))
        message: dict[str, str] = {"id": sent.wamid}
        if kind == "template":
            message["message_status"] = "accepted"
        # contacts[0]: `input` echoes what was sent; `wa_id` when it went to the phone (the
        # phone wins over a BSUID also given), `user_id` when it went to a BSUID.
        target = sent.target
        if target.phone:
            contact = {"input": target.phone, "wa_id": target.phone}
        elif target.user_id:
            contact = {"input": target.user_id, "user_id": target.user_id}
        else:
            contact = {"input": str(target.group_id)}
        return _json(
            {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}
        )

    def _mark_read(self, phone_number_id: str, payload: dict[str, Any]) -> web.Response:
        """`{"messaging_product": "whatsapp", "status": "read", "message_id": wamid}`,
        with `"typing_indicator": {"type": "text"}` to show typing: `{"success": true}`."""
        if payload.get("messaging_product") != "whatsapp":
            return _invalid("Param messaging_product must be 'whatsapp'")
        if payload.get("status") != "read":
            return _invalid("Param status must be 'read'")
        message_id = payload.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            return _invalid("Param message_id is required")
        typing = payload.get("typing_indicator")
        if typing is not None and typing != {"type": "text"}:
            return _invalid("Param typing_indicator must be {'type': 'text'}")
        self.reads.append(
            ReadReceipt(phone_number_id, message_id, typing is not None, self.clock())
        )
        return _json({"success": True})

    async def upload(self, request: web.Request, phone_number_id: str) -> web.Response:
        """`POST /{phone-number-id}/media`, multipart: `messaging_product`, `type` (the
        MIME type) and `file`. Answers `{"id": media_id}`; a type or size Meta does not
        take is 131053."""
        form = await _upload_form(request)
        if isinstance(form, web.Response):
            return form
        fields, upload = form
        if fields.get("messaging_product") != "whatsapp":
            return _invalid("Param messaging_product must be 'whatsapp'")
        if upload is None:
            return _invalid("Param file is required")
        mime_type = fields.get("type", "").strip()
        if not mime_type:
            return _invalid("Param type is required")
        data, filename = upload
        kind = _media_kind(mime_type)
        if kind is None:
            known = sorted(set().union(*(rule.mime_types for rule in MEDIA_RULES.values())))
            return _refused(
                _Refusal(
                    131053,
                    f"Param file must be a file with one of the following types: "
                    f"{', '.join(known)}. Received file of type '{mime_type}'.",
                )
            )
        problem = media_problem(kind, mime_type, len(data), animated=animated_webp(data))
        if problem is not None:
            return _refused(_Refusal(131053, problem[0].upper() + problem[1:]))
        media_id = new_media_id()
        while media_id in self.media:
            media_id = new_media_id()
        self.seed_media(
            media_id, data, mime_type, phone_number_id=phone_number_id, filename=filename
        )
        log.info("media uploaded", extra={"phone_number_id": phone_number_id, "kind": kind})
        return _json({"id": media_id})

    async def media_url(self, request: web.Request, media_id: str) -> web.Response:
        """`GET /{media-id}`: a fresh download URL (good for `media_url_ttl_s`), the
        MIME type, SHA-256 and size."""
        self.media_lookups.append(media_id)
        hold = self._media_holds.get(media_id)
        if hold is not None:
            await hold.wait()
        media = self.media.get(media_id)
        owner = request.query.get("phone_number_id")
        if (
            media is None
            or not self._may_fetch(_token(request), media)
            or (owner and media.phone_number_id not in (None, owner))
        ):
            return _unknown_object(media_id, "get")
        now = self.clock()
        for key, (_, expiry) in list(self._media_urls.items()):
            if expiry <= now:
                del self._media_urls[key]
        key = secrets.token_urlsafe(24)
        expiry = now + self.media_url_ttl_s
        if media_id in self._expire_next:
            self._expire_next.discard(media_id)
            expiry = now  # gone before it can be used
        self._media_urls[key] = (media_id, expiry)
        query = {"mid": media_id, "ext": str(int(expiry)), "hash": key}
        url = request.url.origin().with_path(MEDIA_PATH).with_query(query)
        return _json(
            {
                "messaging_product": "whatsapp",
                "url": str(url),
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "file_size": media.file_size,
                "id": media_id,
            }
        )

    async def download(self, request: web.Request) -> web.StreamResponse:
        """A media URL: the file, for the bearer token of a number that may have it;
        404 once the URL has expired (or never was), 401 without a good token."""
        media_id = request.query.get("mid", "")
        issued = self._media_urls.get(request.query.get("hash", ""))
        if (
            issued is None
            or issued[0] != media_id
            or issued[1] <= self.clock()
            or issued[0] not in self.media
        ):
            self.media_downloads.append((media_id, 404))
            return web.Response(status=404, text="Not Found")
        media = self.media[issued[0]]
        if not self._may_fetch(_token(request), media):
            self.media_downloads.append((media_id, 401))
            return web.Response(status=401, text="Unauthorized")
        self.media_downloads.append((media_id, 200))
        return web.Response(body=media.data, headers={"Content-Type": media.mime_type})

    async def message_templates(self, request: web.Request, waba_id: str) -> web.Response:
        """`GET /{waba-id}/message_templates` with `fields`, `limit` and the `after`
        (or `before`) cursor; `paging.next` while more follow."""
        known = self.templates.get(waba_id)
        numbers = [number for number, waba in self.wabas.items() if waba == waba_id]
        token = _token(request)
        if (known is None and not numbers) or (
            numbers and token not in {self.tokens.get(number) for number in numbers}
        ):
            return _unknown_object(waba_id, "get")
        known = known or []
        fields = [
            name.strip() for name in request.query.get("fields", "").split(",") if name.strip()
        ] or list(TEMPLATE_FIELDS)
        try:
            limit = int(request.query.get("limit", TEMPLATES_PAGE))
            start = 0
            if "after" in request.query:
                start = _cursor_index(request.query["after"]) + 1
            elif "before" in request.query:
                end = _cursor_index(request.query["before"])
                start = max(0, end - limit)
        except ValueError:
            return _invalid("Param limit must be a positive integer and cursors as given")
        if limit < 1:
            return _invalid("Param limit must be a positive integer")
        page = known[start : start + limit]
        answer: dict[str, Any] = {"data": [template.listed(fields) for template in page]}
        if page:
            last = start + len(page) - 1
            paging: dict[str, Any] = {"cursors": {"before": _cursor(start), "after": _cursor(last)}}
            if last + 1 < len(known):
                query = {**request.query, "after": _cursor(last)}
                query.pop("before", None)
                paging["next"] = str(request.url.with_query(query))
            if start > 0:
                query = {**request.query, "before": _cursor(start)}
                query.pop("after", None)
                paging["previous"] = str(request.url.with_query(query))
            answer["paging"] = paging
        return _json(answer)

    async def request_code(self, request: web.Request, phone_number_id: str) -> web.Response:
        params = await _params(request)
        if params.get("code_method") not in ("SMS", "VOICE"):
            return _invalid("Param code_method must be one of {SMS, VOICE}")
        if not params.get("language"):
            return _invalid("The parameter language is required.")
        self._codes[phone_number_id] = f"{secrets.randbelow(10**6):06d}"
        return _json({"success": True})

    async def verify_code(self, request: web.Request, phone_number_id: str) -> web.Response:
        code = (await _params(request)).get("code")
        if not isinstance(code, str) or not code:
            return _invalid("The parameter code is required.")
        expected = self._codes.get(phone_number_id)
        if expected is None or not secrets.compare_digest(code, expected):
            return _json(meta_error(136025, *KNOWN_ERRORS[136025]), 400)
        return _json({"success": True})

    async def register(self, request: web.Request, phone_number_id: str) -> web.Response:
        params = await _params(request)
        if params.get("messaging_product") != "whatsapp":
            return _invalid("The parameter messaging_product is required.")
        pin = params.get("pin")
        if not isinstance(pin, str) or not re.fullmatch(r"[0-9]{6}", pin):
            return _invalid("Param pin must be 6 digits")
        self.registered.add(phone_number_id)
        return _json({"success": True})

    # Controls for humans

    async def list_sent(self, request: web.Request) -> web.StreamResponse:
        return _json(self.sent)

    async def show_code(self, request: web.Request) -> web.StreamResponse:
        code = self.code_for(request.match_info["phone_number_id"])
        if code is None:
            return _json({"error": "no code requested for this number"}, 404)
        return _json({"code": code})

    async def queue_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            faults = msgspec.json.decode(await request.read(), type=list[Fault])
        except msgspec.DecodeError as error:
            return _json({"error": f"expected a JSON list of faults: {error}"}, 400)
        self.fail_next(request.match_info["phone_number_id"], *faults)
        return _json({"queued": len(faults)})

    async def list_reads(self, request: web.Request) -> web.StreamResponse:
        return _json(self.reads)

    async def list_media(self, request: web.Request) -> web.StreamResponse:
        """The media the stand-in has, without their bytes."""
        return _json(
            [
                {
                    "id": media.id,
                    "mime_type": media.mime_type,
                    "sha256": media.sha256,
                    "file_size": media.file_size,
                    "phone_number_id": media.phone_number_id,
                    "filename": media.filename,
                }
                for media in self.media.values()
            ]
        )

    async def add_media(self, request: web.Request) -> web.StreamResponse:
        """The raw body as a customer's media, `?mime_type=...` (and `id=`, else a new
        one): answers `{"id"}`, for a webhook's media message to name."""
        mime_type = request.query.get("mime_type", "")
        if not mime_type:
            return _json({"error": "the query needs mime_type"}, 400)
        media_id = request.query.get("id") or new_media_id()
        self.seed_media(media_id, await request.read(), mime_type)
        return _json({"id": media_id})

    async def expire_media(self, request: web.Request) -> web.StreamResponse:
        return _json({"expired": self.expire_media_urls()})

    async def list_templates(self, request: web.Request) -> web.StreamResponse:
        return _json(self.templates)

    async def put_templates(self, request: web.Request) -> web.StreamResponse:
        """Body [template, ...]: the business account's templates (replaced)."""
        try:
            templates = msgspec.json.decode(await request.read(), type=list[Template])
        except msgspec.DecodeError as error:
            return _json({"error": f"expected a JSON list of templates: {error}"}, 400)
        waba_id = request.match_info["waba_id"]
        self.set_templates(waba_id, templates)
        return _json(self.templates[waba_id])

    async def list_users(self, request: web.Request) -> web.StreamResponse:
        return _json(self.users)

    async def add_users(self, request: web.Request) -> web.StreamResponse:
        """Body {phone: BSUID, ...}: added to (or replacing in) `users`; answers them all."""
        try:
            users = msgspec.json.decode(await request.read(), type=dict[str, str])
        except msgspec.DecodeError as error:
            return _json({"error": f"expected a JSON object of phone: BSUID: {error}"}, 400)
        self.users.update(users)
        return _json(self.users)

    async def list_groups(self, request: web.Request) -> web.StreamResponse:
        return _json(self.groups)

    async def add_groups(self, request: web.Request) -> web.StreamResponse:
        """Body {group id: [[phone or null, BSUID], ...], ...}: each group's participants
        set (replaced); answers all groups."""
        try:
            groups = msgspec.json.decode(
                await request.read(), type=dict[str, list[tuple[str | None, str]]]
            )
        except msgspec.DecodeError as error:
            return _json(
                {"error": f"expected a JSON object of group id: [[phone, BSUID]]: {error}"}, 400
            )
        self.groups.update(groups)
        return _json(self.groups)

    # Internals

    def _authorize(self, request: web.Request, phone_number_id: str) -> web.Response | None:
        token = _token(request)
        if token and token == self.tokens.get(phone_number_id):
            return None
        if token and token in self.tokens.values():
            # A good token, but not this number's: Meta's answer for an unknown object.
            message = (
                f"Unsupported post request. Object with ID '{phone_number_id}' does not exist,"
                " cannot be loaded due to missing permissions, or does not support this"
                " operation."
            )
            return _json(meta_error(100, "", message=message), 400)
        if token and phone_number_id not in self.tokens:
            # A number added to the business account since: its first token is its own,
            # so numbers registered through Parley's API work here too.
            self.tokens[phone_number_id] = token
            return None
        return _json(meta_error(190, "", message=OAUTH_REFUSAL), 401)

    def _authorize_reader(self, request: web.Request, object_id: str) -> web.Response | None:
        """Any of the stand-in's tokens may ask; the edge then says whether that token
        may see the object (Meta: "does not exist, cannot be loaded due to missing
        permissions")."""
        token = _token(request)
        if token and token in self.tokens.values():
            return None
        return _json(meta_error(190, "", message=OAUTH_REFUSAL), 401)

    def _may_fetch(self, token: str, media: StoredMedia) -> bool:
        """A customer's media: any of the stand-in's tokens; an upload: the uploading
        number's token, or that of a number of the same business account."""
        if not token or token not in self.tokens.values():
            return False
        owner = media.phone_number_id
        if owner is None or self.tokens.get(owner) == token:
            return True
        waba_id = self.wabas.get(owner)
        return waba_id is not None and any(
            self.tokens.get(number) == token
            for number, waba in self.wabas.items()
            if waba == waba_id
        )

    def _participants(self, to: str | Recipient) -> Participants:
        if isinstance(to, Recipient) and to.group_id and not to.phone and not to.user_id:
            return self.groups.get(to.group_id, ())
        return ()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post_auto_statuses(self, phone_number_id: str, wamid: str, to: Recipient) -> None:
        await asyncio.sleep(STATUS_GAP_S)  # after the send's answer, as with Meta
        try:
            answers = await self.post_statuses(
                phone_number_id, wamid, to, self.auto_statuses, gap_s=STATUS_GAP_S
            )
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
            log.warning(
                "status webhooks not delivered", extra={"error": f"{type(error).__name__}: {error}"}
            )
            return
        if any(answer >= 300 for answer in answers):
            log.warning("status webhooks refused", extra={"answers": answers})


def create_app(standin: StandIn) -> web.Application:
    """The stand-in's routes, under the bare path and under a version (/v21.0/...)."""
    app = web.Application(client_max_size=UPLOAD_MAX)
    app.router.add_get("/_standin/sent", standin.list_sent)
    app.router.add_get("/_standin/reads", standin.list_reads)
    app.router.add_get("/_standin/media", standin.list_media)
    app.router.add_post("/_standin/media", standin.add_media)
    app.router.add_post("/_standin/media/expire", standin.expire_media)
    app.router.add_get("/_standin/templates", standin.list_templates)
    app.router.add_post("/_standin/templates/{waba_id}", standin.put_templates)
    app.router.add_get("/_standin/codes/{phone_number_id}", standin.show_code)
    app.router.add_post("/_standin/faults/{phone_number_id}", standin.queue_faults)
    app.router.add_get("/_standin/users", standin.list_users)
    app.router.add_post("/_standin/users", standin.add_users)
    app.router.add_get("/_standin/groups", standin.list_groups)
    app.router.add_post("/_standin/groups", standin.add_groups)
    standin.onboarding.add_controls(app.router)
    for prefix in ("", r"/{version:v[0-9]+\.[0-9]+}"):
        standin.onboarding.add_edges(app.router, prefix)  # before GET /{media_id}
        for name, handle in (
            ("messages", standin.messages),
            ("request_code", standin.request_code),
            ("verify_code", standin.verify_code),
            ("register", standin.register),
        ):
            app.router.add_post(f"{prefix}/{{phone_number_id}}/{name}", standin.edge(handle))
        app.router.add_post(
            f"{prefix}/{{phone_number_id}}/media", standin.edge(standin.upload, read_body=False)
        )
        app.router.add_get(
            f"{prefix}/{{waba_id}}/message_templates",
            standin.edge(
                standin.message_templates, key="waba_id", authorize=standin._authorize_reader
            ),
        )
        media = standin.edge(standin.media_url, key="media_id", authorize=standin._authorize_reader)
        app.router.add_get(f"{prefix}/{{media_id}}", standin.onboarding.by_id(media))
    app.router.add_get(MEDIA_PATH, standin.download)

    async def cancel_background(app: web.Application) -> None:
        await standin.close()

    app.on_cleanup.append(cancel_background)
    return app


def _fault_answer(fault: Fault) -> web.Response:
    if fault.code is None:  # not Meta's shape: a proxy or load balancer answering
        return web.Response(status=fault.status, text=fault.title or "upstream failure")
    known_title, known_details = KNOWN_ERRORS.get(fault.code, ("Unknown error", None))
    details = known_details if fault.details is None else fault.details
    return _json(meta_error(fault.code, fault.title or known_title, details), fault.status)


def _message_problem(payload: dict[str, Any] | None) -> _Refusal | None:
    """Meta's 100 answer when the send is malformed (its envelope, recipient or type),
    else None."""
    if payload is None:
        return _param("The request body must be a JSON object.")
    for name in ("messaging_product", "type"):
        if not payload.get(name):
            return _param(f"Param {name} is required", f"(#100) The parameter {name} is required.")
    if payload["messaging_product"] != "whatsapp":
        return _param("Param messaging_product must be 'whatsapp'")
    problem = _recipient_problem(payload)
    if problem is not None:
        return problem
    kind = payload["type"]
    if kind not in MESSAGE_TYPES:
        return _param(f"Param type must be one of {sorted(MESSAGE_TYPES)}")
    if not isinstance(payload.get(kind), dict) and not (
        kind == "contacts" and isinstance(payload.get(kind), list)
    ):
        return _param(f"Param {kind} is required")
    if "context" in payload:
        context = payload["context"]
        if not isinstance(context, dict) or not _text(context.get("message_id")):
            return _param("Param context['message_id'] is required")
    return None


def _recipient_problem(payload: dict[str, Any]) -> _Refusal | None:
    """Meta's 2026 recipients: `to` (a phone), `recipient` (a BSUID; `to` wins when both
    are given), or `recipient_type: "group"` with `to` (the group id)."""
    recipient_type = payload.get("recipient_type", "individual")
    if recipient_type not in ("individual", "group"):
        return _param("Param recipient_type must be one of {individual, group}")
    for name in ("to", "recipient"):
        if name in payload and not isinstance(payload[name], str):
            return _param(f"Param {name} must be a string")
    if recipient_type == "group":
        if not payload.get("to"):
            return _param("Param to is required", "(#100) The parameter to is required.")
        return None
    if not payload.get("to") and not payload.get("recipient"):
        return _param(
            "Param to or recipient is required",
            "(#100) The parameter to or recipient is required.",
        )
    user_id = payload.get("recipient")
    if user_id and not BSUID.fullmatch(user_id):
        return _param("Param recipient must be a business-scoped user id")
    return None


def _content_problem(
    payload: dict[str, Any],
    media: Mapping[str, StoredMedia],
    templates: Sequence[Template] | None,
) -> _Refusal | None:
    """Meta's answer to a message object it would not send, else None: 100 for a
    missing or misspelled field, 131009 for a value past Meta's limits, 131053 for a
    media id it does not have, 132xxx for a template that does not fit its definition."""
    kind = payload["type"]
    content = payload[kind]
    if kind == "text":
        text = content.get("body")
        if not isinstance(text, str) or not text.strip():
            return _param("Param text['body'] is required")
        if len(text) > TEXT_MAX:
            return _param(f"Param text['body'] must be at most {TEXT_MAX} characters long")
        if not isinstance(content.get("preview_url", False), bool):
            return _param("Param text['preview_url'] must be a boolean")
        return None
    if kind in MEDIA_FIELDS:
        return _media_object_problem(kind, content, media, kind)
    checks: dict[str, Callable[[], _Refusal | None]] = {
        "interactive": lambda: _interactive_problem(content, media),
        "reaction": lambda: _reaction_problem(content),
        "location": lambda: _location_problem(content, "location"),
        "contacts": lambda: _contacts_problem(content),
        "template": lambda: _template_problem(content, media, templates),
    }
    return checks[kind]()


def _media_object_problem(
    kind: str, content: Any, media: Mapping[str, StoredMedia], where: str
) -> _Refusal | None:
    """An image, video, audio, document or sticker object: an uploaded media's `id` or
    a `link`; `caption` on image, video and document; `filename` on a document."""
    if not isinstance(content, dict):
        return _param(f"Param {where} must be an object")
    for key in content:
        if key not in MEDIA_FIELDS[kind]:
            return _param(f"Param {where}['{key}'] is not a valid parameter for {kind}")
    has_id, has_link = "id" in content, "link" in content
    if has_id == has_link:
        return _param(f"Param {where} must have either 'id' or 'link', not both")
    caption = content.get("caption")
    if caption is not None:
        if kind not in CAPTIONED or not isinstance(caption, str):
            return _param(f"Param {where}['caption'] must be a string, on image/video/document")
        if len(caption) > CAPTION_MAX:
            return _value(f"Param {where}['caption'] must be at most {CAPTION_MAX} characters long")
    if "filename" in content and not _text(content["filename"]):
        return _param(f"Param {where}['filename'] must be a non-empty string")
    if has_link:
        link = content["link"]
        parts = urlsplit(link) if isinstance(link, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            return _value(f"Param {where}['link'] must be an http(s) URL")
        return None
    media_id = content["id"]
    if not _text(media_id):
        return _param(f"Param {where}['id'] must be a non-empty string")
    stored = media.get(media_id)
    if stored is None:
        return _Refusal(
            131053,
            f"Media id {media_id} was not found: upload it to /{{phone-number-id}}/media first",
        )
    rule = MEDIA_RULES[kind]
    if kind != "document" and _base_type(stored.mime_type) not in rule.mime_types:
        return _Refusal(
            131053,
            f"Media {media_id} is {stored.mime_type}; a {kind} must be one of "
            f"{', '.join(sorted(rule.mime_types))}",
        )
    return None


def _interactive_problem(
    content: dict[str, Any], media: Mapping[str, StoredMedia]
) -> _Refusal | None:
    """Reply buttons (`button`) and lists in Meta's shape and limits; a `cta_url`'s
    button; the other interactive types only need an `action`."""
    kind = content.get("type")
    if kind not in INTERACTIVE_TYPES:
        return _param(f"Param interactive['type'] must be one of {sorted(INTERACTIVE_TYPES)}")
    action = content.get("action")
    if not isinstance(action, dict):
        return _param("Param interactive['action'] is required")
    if kind not in ("button", "list", "cta_url"):
        return None
    body_max = LIST_BODY_MAX if kind == "list" else BUTTON_BODY_MAX
    problem = (
        _caption_problem(content, "body", body_max, required=True)
        or _caption_problem(content, "footer", FOOTER_TEXT_MAX, required=False)
        or _header_problem(content.get("header"), media, media_allowed=kind != "list")
    )
    if problem is not None:
        return problem
    if kind == "button":
        return _buttons_problem(action)
    if kind == "list":
        return _list_problem(action)
    parameters = action.get("parameters")
    if action.get("name") != "cta_url" or not isinstance(parameters, dict):
        return _param("Param interactive['action'] must have name 'cta_url' and parameters")
    problem = _length_problem(
        parameters.get("display_text"),
        "interactive['action']['parameters']['display_text']",
        BUTTON_TITLE_MAX,
    )
    if problem is not None:
        return problem
    url = parameters.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        return _value("Param interactive['action']['parameters']['url'] must be an http(s) URL")
    return None


def _caption_problem(
    content: dict[str, Any], name: str, limit: int, *, required: bool
) -> _Refusal | None:
    """interactive['body'] or ['footer']: {"text": ...} of at most `limit` characters."""
    if name not in content and not required:
        return None
    part = content.get(name)
    if not isinstance(part, dict) or not _text(part.get("text")):
        return _param(f"Param interactive['{name}']['text'] is required")
    return _length_problem(part["text"], f"interactive['{name}']['text']", limit)


def _header_problem(
    header: Any, media: Mapping[str, StoredMedia], *, media_allowed: bool
) -> _Refusal | None:
    if header is None:
        return None
    kinds = ("text", "image", "video", "document") if media_allowed else ("text",)
    if not isinstance(header, dict) or header.get("type") not in kinds:
        return _param(f"Param interactive['header']['type'] must be one of {list(kinds)}")
    kind = header["type"]
    if kind == "text":
        if not _text(header.get("text")):
            return _param("Param interactive['header']['text'] is required")
        return _length_problem(header["text"], "interactive['header']['text']", HEADER_TEXT_MAX)
    return _media_object_problem(kind, header.get(kind), media, f"interactive['header']['{kind}']")


def _buttons_problem(action: dict[str, Any]) -> _Refusal | None:
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        return _param("Param interactive['action']['buttons'] is required")
    if len(buttons) > BUTTONS_MAX:
        return _value(
            f"Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: {BUTTONS_MAX}"
        )
    ids: set[str] = set()
    titles: set[str] = set()
    for index, button in enumerate(buttons):
        where = f"interactive['action']['buttons'][{index}]"
        reply = button.get("reply") if isinstance(button, dict) else None
        if not isinstance(reply, dict) or button.get("type") != "reply":
            return _param(f"Param {where} must be {{'type': 'reply', 'reply': {{id, title}}}}")
        problem = _length_problem(
            reply.get("id"), f"{where}['reply']['id']", BUTTON_ID_MAX
        ) or _length_problem(reply.get("title"), f"{where}['reply']['title']", BUTTON_TITLE_MAX)
        if problem is not None:
            return problem
        if reply["id"] in ids or reply["title"] in titles:
            return _value("Button ids and titles must be unique within the message")
        ids.add(reply["id"])
        titles.add(reply["title"])
    return None


def _list_problem(action: dict[str, Any]) -> _Refusal | None:
    problem = _length_problem(
        action.get("button"), "interactive['action']['button']", LIST_BUTTON_MAX
    )
    if problem is not None:
        return problem
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections:
        return _param("Param interactive['action']['sections'] is required")
    if len(sections) > SECTIONS_MAX:
        return _value(f"Invalid sections count. Min: 1, Max: {SECTIONS_MAX}")
    rows_seen: set[str] = set()
    for number, section in enumerate(sections):
        where = f"interactive['action']['sections'][{number}]"
        if not isinstance(section, dict):
            return _param(f"Param {where} must be an object")
        if "title" in section or len(sections) > 1:
            problem = _length_problem(section.get("title"), f"{where}['title']", SECTION_TITLE_MAX)
            if problem is not None:
                return problem
        rows = section.get("rows")
        if not isinstance(rows, list) or not rows:
            return _param(f"Param {where}['rows'] is required")
        for index, row in enumerate(rows):
            row_where = f"{where}['rows'][{index}]"
            if not isinstance(row, dict):
                return _param(f"Param {row_where} must be an object")
            problem = _length_problem(
                row.get("id"), f"{row_where}['id']", ROW_ID_MAX
            ) or _length_problem(row.get("title"), f"{row_where}['title']", ROW_TITLE_MAX)
            if problem is None and "description" in row:
                problem = _length_problem(
                    row["description"], f"{row_where}['description']", ROW_DESCRIPTION_MAX
                )
            if problem is not None:
                return problem
            if row["id"] in rows_seen:
                return _value("Row ids must be unique within the message")
            rows_seen.add(row["id"])
    if len(rows_seen) > ROWS_MAX:
        return _value(f"Invalid rows count. Min: 1, Max: {ROWS_MAX} across all sections")
    return None


def _reaction_problem(content: dict[str, Any]) -> _Refusal | None:
    """{message_id, emoji}: one emoji, or "" to take the reaction back."""
    if not _text(content.get("message_id")):
        return _param("Param reaction['message_id'] is required")
    emoji = content.get("emoji")
    if not isinstance(emoji, str):
        return _param("Param reaction['emoji'] is required")
    if emoji and (
        len(emoji) > 10
        or emoji.isascii()
        or any(char.isascii() and (char.isalpha() or char.isspace()) for char in emoji)
    ):
        return _value("Param reaction['emoji'] must be a single emoji")
    return None


def _location_problem(content: Any, where: str) -> _Refusal | None:
    if not isinstance(content, dict):
        return _param(f"Param {where} must be an object")
    for name, limit in (("latitude", 90.0), ("longitude", 180.0)):
        value = content.get(name)
        try:
            number = (
                float(value)
                if isinstance(value, int | float | str) and not isinstance(value, bool)
                else None
            )
        except ValueError:
            number = None
        if number is None:
            return _param(f"Param {where}['{name}'] is required")
        if not -limit <= number <= limit:
            return _value(f"Param {where}['{name}'] must be between -{limit:g} and {limit:g}")
    for name in ("name", "address"):
        if name in content and not isinstance(content[name], str):
            return _param(f"Param {where}['{name}'] must be a string")
    return None


def _contacts_problem(contacts: Any) -> _Refusal | None:
    if not isinstance(contacts, list) or not contacts:
        return _param("Param contacts must be a non-empty list")
    for index, contact in enumerate(contacts):
        name = contact.get("name") if isinstance(contact, dict) else None
        if not isinstance(name, dict) or not _text(name.get("formatted_name")):
            return _param(f"Param contacts[{index}]['name']['formatted_name'] is required")
    return None


def _template_problem(
    content: dict[str, Any],
    media: Mapping[str, StoredMedia],
    templates: Sequence[Template] | None,
) -> _Refusal | None:
    """The components' shape; then, when the business account's templates are known,
    the template itself: it exists in that language and is approved (132001, 132015,
    132016), and the header, body and button parameters fit its definition (132000 for
    a count, 132012 for a format)."""
    name, language = content.get("name"), content.get("language")
    if not _text(name) or not isinstance(language, dict) or not _text(language.get("code")):
        return _param("Param template['name'] and template['language']['code'] are required")
    sent = _sent_components(content.get("components", []), media)
    if isinstance(sent, _Refusal):
        return sent
    if templates is None:
        return None
    code = language["code"]
    template = next(
        (known for known in templates if known.name == name and known.language == code), None
    )
    if template is None or template.status not in ("APPROVED", "PAUSED", "DISABLED"):
        return _Refusal(132001, f"template name ({name}) does not exist in {code}")
    if template.status == "PAUSED":
        return _Refusal(132015, KNOWN_ERRORS[132015][1])
    if template.status == "DISABLED":
        return _Refusal(132016, KNOWN_ERRORS[132016][1])
    defined = {str(part.get("type", "")).upper(): part for part in template.components}
    header, body, buttons = sent
    return (
        _header_fits(defined.get("HEADER"), header)
        or _body_fits(defined.get("BODY"), body, template.parameter_format)
        or _buttons_fit(defined.get("BUTTONS"), buttons)
    )


_Sent = tuple[
    list[dict[str, Any]], list[dict[str, Any]], dict[int, tuple[str, list[dict[str, Any]]]]
]


def _sent_components(components: Any, media: Mapping[str, StoredMedia]) -> _Sent | _Refusal:
    """A send's header and body parameters and its buttons' (index -> sub_type,
    parameters), each parameter checked in its own shape."""
    if not isinstance(components, list):
        return _param("Param template['components'] must be a list")
    header: list[dict[str, Any]] | None = None
    body: list[dict[str, Any]] | None = None
    buttons: dict[int, tuple[str, list[dict[str, Any]]]] = {}
    for number, component in enumerate(components):
        where = f"template['components'][{number}]"
        if not isinstance(component, dict):
            return _param(f"Param {where} must be an object")
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
            return _param(f"Param {where}['parameters'] must be a list of objects")
        for index, parameter in enumerate(parameters):
            problem = _parameter_problem(parameter, media, f"{where}['parameters'][{index}]")
            if problem is not None:
                return problem
        kind = str(component.get("type", "")).lower()
        if kind in ("header", "body"):
            if (header if kind == "header" else body) is not None:
                return _param(f"Param template['components'] has more than one {kind}")
            if kind == "header":
                header = parameters
            else:
                body = parameters
        elif kind == "button":
            sub_type = component.get("sub_type")
            raw_index = component.get("index")
            if not isinstance(sub_type, str) or sub_type.lower() not in set(
                BUTTON_SUB_TYPES.values()
            ):
                return _param(
                    f"Param {where}['sub_type'] must be one of {sorted(set(BUTTON_SUB_TYPES.values()))}"
                )
            if isinstance(raw_index, bool) or not str(raw_index).isdigit():
                return _param(f"Param {where}['index'] must be a button's position, e.g. '0'")
            index = int(str(raw_index))
            if index in buttons:
                return _param(f"Param template['components'] names button {index} twice")
            buttons[index] = (sub_type.lower(), parameters)
        else:
            return _param(f"Param {where}['type'] must be one of header, body, button")
    return header or [], body or [], buttons


def _parameter_problem(
    parameter: dict[str, Any], media: Mapping[str, StoredMedia], where: str
) -> _Refusal | None:
    kind = parameter.get("type")
    if kind not in PARAMETER_TYPES:
        return _param(f"Param {where}['type'] must be one of {sorted(PARAMETER_TYPES)}")
    if kind in ("text", "payload", "coupon_code"):
        if not _text(parameter.get(kind)):
            return _param(f"Param {where}['{kind}'] is required")
        return None
    if kind in ("image", "video", "document"):
        return _media_object_problem(kind, parameter.get(kind), media, f"{where}['{kind}']")
    if kind == "location":
        return _location_problem(parameter.get("location"), f"{where}['location']")
    if kind in ("currency", "date_time"):
        value = parameter.get(kind)
        if not isinstance(value, dict) or not _text(value.get("fallback_value")):
            return _param(f"Param {where}['{kind}']['fallback_value'] is required")
    return None


def _header_fits(defined: dict[str, Any] | None, sent: list[dict[str, Any]]) -> _Refusal | None:
    form = str((defined or {}).get("format", "TEXT")).upper()
    if defined is None:
        expected = 0
    elif form == "TEXT":
        expected = len(_placeholders(str(defined.get("text", ""))))
    else:  # IMAGE, VIDEO, DOCUMENT, LOCATION: one parameter, the media or place
        expected = 1
    if len(sent) != expected:
        return _count_mismatch("header", len(sent), expected)
    received = str(sent[0].get("type", "")).upper() if sent else form
    if defined is not None and received != form:
        return _Refusal(132012, f"header: Format mismatch, expected {form}, received {received}")
    return None


def _body_fits(
    defined: dict[str, Any] | None, sent: list[dict[str, Any]], parameter_format: str
) -> _Refusal | None:
    text = str((defined or {}).get("text", ""))
    names = _placeholders(text)
    if len(sent) != len(names):
        return _count_mismatch("body", len(sent), len(names))
    values: dict[str, str] = {}
    for index, parameter in enumerate(sent):
        value = parameter.get(parameter["type"])
        shown = value if isinstance(value, str) else str((value or {}).get("fallback_value", ""))
        if parameter_format.upper() == "NAMED":
            key = parameter.get("parameter_name")
            if key not in names:
                return _Refusal(
                    132000, f"body: parameter_name {key!r} is not one of the template's {names}"
                )
        else:
            key = str(index + 1)
        values[str(key)] = shown
    hydrated = PLACEHOLDER.sub(lambda match: values.get(match[1], ""), text)
    if len(hydrated) > HYDRATED_BODY_MAX:
        return _Refusal(
            132005,
            f"body: {len(hydrated)} characters once filled in, more than {HYDRATED_BODY_MAX}",
        )
    return None


def _buttons_fit(
    defined: dict[str, Any] | None, sent: dict[int, tuple[str, list[dict[str, Any]]]]
) -> _Refusal | None:
    buttons = [button for button in (defined or {}).get("buttons", []) if isinstance(button, dict)]
    for index, (sub_type, _) in sorted(sent.items()):
        if index >= len(buttons):
            return _value(
                f"button at index {index} does not exist: the template has {len(buttons)}"
            )
        kind = str(buttons[index].get("type", "")).upper()
        if BUTTON_SUB_TYPES.get(kind) != sub_type:
            return _value(f"button at index {index} is {kind}, not {sub_type}")
    for index, button in enumerate(buttons):
        kind = str(button.get("type", "")).upper()
        if kind == "URL":
            expected = len(_placeholders(str(button.get("url", ""))))
        elif kind == "COPY_CODE":
            expected = 1
        else:
            continue
        given = len(sent[index][1]) if index in sent else 0
        if given != expected:
            return _count_mismatch(f"button at index {index} ({kind})", given, expected)
    return None


def _count_mismatch(where: str, given: int, expected: int) -> _Refusal:
    return _Refusal(
        132000,
        f"{where}: number of localizable_params ({given}) does not match the expected"
        f" number of params ({expected})",
    )


def _placeholders(text: str) -> list[str]:
    """The distinct variables of a template text, in order: ["1", "2"] or names."""
    return list(dict.fromkeys(match[1] for match in PLACEHOLDER.finditer(text)))


def _length_problem(value: Any, where: str, limit: int) -> _Refusal | None:
    if not _text(value):
        return _param(f"Param {where} is required")
    if len(value) > limit:
        return _value(f"Param {where} must be at most {limit} characters long (it is {len(value)})")
    return None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _param(details: str, message: str | None = None) -> _Refusal:
    return _Refusal(100, details, message)


def _value(details: str) -> _Refusal:
    return _Refusal(131009, details)


def _base_type(mime_type: str) -> str:
    return mime_type.split(";", 1)[0].strip().lower()


def _media_kind(mime_type: str) -> str | None:
    """The kind of media a MIME type uploads as (image/webp: a sticker)."""
    base = _base_type(mime_type)
    return next((kind for kind, rule in MEDIA_RULES.items() if base in rule.mime_types), None)


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{index}".encode()).decode().rstrip("=")


def _cursor_index(cursor: str) -> int:
    """ValueError when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValueError(cursor) from None
    prefix, _, index = text.partition(":")
    if prefix != "cursor" or not index.isdigit():
        raise ValueError(cursor)
    return int(index)


def _token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        token = request.query.get("access_token", "")  # the Graph API takes both
    return token


def _unknown_object(object_id: str, verb: str) -> web.Response:
    message = (
        f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be"
        " loaded due to missing permissions, or does not support this operation."
    )
    return _json(meta_error(100, "", message=message), 400)


def _refused(refusal: _Refusal) -> web.Response:
    title = KNOWN_ERRORS.get(refusal.code, ("Invalid parameter", None))[0]
    return _json(meta_error(refusal.code, title, refusal.details, message=refusal.message), 400)


async def _upload_form(
    request: web.Request,
) -> tuple[dict[str, str], tuple[bytes, str | None] | None] | web.Response:
    """An upload's fields and its file (bytes, filename), or Meta's 100 answer. A
    urlencoded form has fields and no file."""
    fields: dict[str, str] = {}
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        return {name: value for name, value in form.items() if isinstance(value, str)}, None
    if request.content_type != "multipart/form-data":
        return _invalid("The request must be multipart/form-data")
    upload: tuple[bytes, str | None] | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                return _invalid("Nested multipart bodies are not supported")
            if part.name == "file":
                upload = (bytes(await part.read()), part.filename)
            elif part.name:
                fields[part.name] = await part.text()
    except ValueError as error:
        return _invalid(f"Malformed multipart body: {error}")
    return fields, upload


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        return msgspec.json.decode(await request.read(), type=dict[str, Any])
    except msgspec.DecodeError:
        return None


async def _params(request: web.Request) -> dict[str, Any]:
    """A JSON body's fields over the query's: Meta's reference shows either."""
    params: dict[str, Any] = dict(request.query)
    if await request.read():
        params.update(await _json_object(request) or {})
    return params


def _invalid(details: str) -> web.Response:
    return _json(meta_error(100, "Invalid parameter", details), 400)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data), status=status, content_type="application/json"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.graph_standin", description="A local Graph API stand-in."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        help=f"default: $PARLEY_GRAPH_STANDIN_PORT or {DevSettings().graph_standin_port}",
    )
    parser.add_argument("--webhook-url", help="where status webhooks go (none: not sent)")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_env(os.environ)
        dev = dev_settings_from_env(os.environ)
        channels = load_channels(settings.channels_file)
    except (SettingsError, ChannelFileError, ValueError) as error:
        print(f"parley graph stand-in: {error}", file=sys.stderr)
        return 2
    port = args.port if args.port is not None else dev.graph_standin_port
    setup_logging(settings.log_level)
    standin = StandIn(
        {channel.id: channel.access_token for channel in channels},
        webhook_url=args.webhook_url,
        app_secrets={channel.id: channel.app_secret for channel in channels},
        auto_statuses=AUTO_STATUSES,
        wabas={
            channel.id: channel.settings.waba_id
            for channel in channels
            if channel.settings.waba_id is not None
        },
        verified_names={channel.id: channel.settings.display_name for channel in channels},
    )
    log.info(
        "starting graph stand-in",
        extra={
            "host": args.host,
            "port": port,
            "channels": len(channels),
            "webhook_url": args.webhook_url,
        },
    )
    serve(create_app(standin), args.host, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
