"""A local stand-in for the Graph API: the Cloud API's messages edge and phone number
registration, answering as Meta documents them, for tests and for `make run`.

Sends go to a phone (`to`), a business-scoped user id (`recipient`, a BSUID) or a group
(`recipient_type: "group"`, `to`), as in Meta's 2026 Cloud API. Every accepted send is
kept in `sent`; queued faults play Meta's errors, 5xx answers and slow answers; delivery
statuses come back as signed webhooks in Meta's 2026 shape (`recipient_id`,
`recipient_user_id`, group participants). `users` (phone -> BSUID) and `groups` (group id
-> participants) say what Meta would know about whom. Humans drive it over /_standin/*
(sent messages, the last verification code, faults to queue, users, groups).

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
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from devstack.samples import webhook
from devstack.settings import DevSettings, dev_settings_from_env
from devstack.signing import sign
from parley.channels import ChannelFileError, load_channels
from parley.graph import Recipient
from parley.logs import setup_logging
from parley.runtime import serve
from parley.settings import SettingsError, settings_from_env

log = logging.getLogger(__name__)

AUTO_STATUSES = ("sent", "delivered", "read")
STATUS_GAP_S = 0.005  # between auto statuses: in order, yet quick for tests
WEBHOOK_TIMEOUT_S = 10.0
TEXT_MAX = 4096  # Meta's limit on a text message body
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
    None, BSUID): what the status webhooks it posts can say about them."""

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
    ) -> None:
        self.tokens = dict(tokens)
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

    def fail_next(self, phone_number_id: str, *faults: Fault) -> None:
        """Queues faults; each call to the number's edges takes the next one."""
        self._faults.setdefault(phone_number_id, deque()).extend(faults)

    def code_for(self, phone_number_id: str) -> str | None:
        """The last code "sent by SMS or voice" to the number."""
        return self._codes.get(phone_number_id)

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

    def edge(self, handle: Edge) -> Handler:
        """`handle` as a route handler, behind the token check and the fault queue."""

        async def handler(request: web.Request) -> web.StreamResponse:
            phone_number_id = request.match_info["phone_number_id"]
            await request.read()  # now: after a delay the caller may be gone
            denied = self._authorize(request, phone_number_id)
            if denied is not None:
                return denied
            queue = self._faults.get(phone_number_id)
            fault = queue.popleft() if queue else None
            if fault is not None and fault.status >= 300:
                await asyncio.sleep(fault.delay_s)
                return _fault_answer(fault)
            answer = await handle(request, phone_number_id)
            if fault is not None:  # a slow success: done now, answered late
                await asyncio.sleep(fault.delay_s)
            return answer

        return handler

    async def messages(self, request: web.Request, phone_number_id: str) -> web.Response:
        payload = await _json_object(request)
        problem = _message_problem(payload)
        if problem is not None:
            return _json(meta_error(100, "Invalid parameter", problem[1], message=problem[0]), 400)
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
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            token = request.query.get("access_token", "")  # the Graph API takes both
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
    app = web.Application()
    app.router.add_get("/_standin/sent", standin.list_sent)
    app.router.add_get("/_standin/codes/{phone_number_id}", standin.show_code)
    app.router.add_post("/_standin/faults/{phone_number_id}", standin.queue_faults)
    app.router.add_get("/_standin/users", standin.list_users)
    app.router.add_post("/_standin/users", standin.add_users)
    app.router.add_get("/_standin/groups", standin.list_groups)
    app.router.add_post("/_standin/groups", standin.add_groups)
    for prefix in ("", r"/{version:v[0-9]+\.[0-9]+}"):
        for name, handle in (
            ("messages", standin.messages),
            ("request_code", standin.request_code),
            ("verify_code", standin.verify_code),
            ("register", standin.register),
        ):
            app.router.add_post(f"{prefix}/{{phone_number_id}}/{name}", standin.edge(handle))

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


def _message_problem(payload: dict[str, Any] | None) -> tuple[str, str] | None:
    """(message, details) of Meta's 100 answer when the send is malformed, else None."""
    if payload is None:
        return "(#100) Invalid parameter", "The request body must be a JSON object."
    for name in ("messaging_product", "type"):
        if not payload.get(name):
            return f"(#100) The parameter {name} is required.", f"Param {name} is required"
    if payload["messaging_product"] != "whatsapp":
        return "(#100) Invalid parameter", "Param messaging_product must be 'whatsapp'"
    problem = _recipient_problem(payload)
    if problem is not None:
        return problem
    kind = payload["type"]
    if kind not in MESSAGE_TYPES:
        return "(#100) Invalid parameter", f"Param type must be one of {sorted(MESSAGE_TYPES)}"
    content = payload.get(kind)
    if not isinstance(content, dict):
        return "(#100) Invalid parameter", f"Param {kind} is required"
    if kind == "text":
        text = content.get("body")
        if not isinstance(text, str) or not text.strip():
            return "(#100) Invalid parameter", "Param text['body'] is required"
        if len(text) > TEXT_MAX:
            return (
                "(#100) Invalid parameter",
                f"Param text['body'] must be at most {TEXT_MAX} characters long",
            )
    if kind == "template":
        language = content.get("language")
        if not content.get("name") or not isinstance(language, dict) or not language.get("code"):
            return (
                "(#100) Invalid parameter",
                "Param template['name'] and template['language']['code'] are required",
            )
    return None


def _recipient_problem(payload: dict[str, Any]) -> tuple[str, str] | None:
    """Meta's 2026 recipients: `to` (a phone), `recipient` (a BSUID; `to` wins when both
    are given), or `recipient_type: "group"` with `to` (the group id)."""
    recipient_type = payload.get("recipient_type", "individual")
    if recipient_type not in ("individual", "group"):
        return "(#100) Invalid parameter", "Param recipient_type must be one of {individual, group}"
    for name in ("to", "recipient"):
        if name in payload and not isinstance(payload[name], str):
            return "(#100) Invalid parameter", f"Param {name} must be a string"
    if recipient_type == "group":
        if not payload.get("to"):
            return "(#100) The parameter to is required.", "Param to is required"
        return None
    if not payload.get("to") and not payload.get("recipient"):
        return (
            "(#100) The parameter to or recipient is required.",
            "Param to or recipient is required",
        )
    user_id = payload.get("recipient")
    if user_id and not BSUID.fullmatch(user_id):
        return "(#100) Invalid parameter", "Param recipient must be a business-scoped user id"
    return None


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
