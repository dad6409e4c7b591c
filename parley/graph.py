"""The one Graph API client: WhatsApp Cloud API sends and phone number registration.

A send goes to a `Recipient`: a phone number, a business-scoped user id (BSUID) or a
group, as Meta's 2026 Cloud API takes them.

One attempt per call. Failures become a `GraphError` that says whether trying again can
help; the caller owns the retry policy (the sender uses tenacity). Tokens go in the
Authorization header only and never into an error's text.
"""

from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec

# Meta's codes that mean "not now" rather than "never" (Cloud API error codes page and
# the Graph API error handling guide). Everything else in a 4xx is permanent: 131047
# (Re-engagement message: over 24 hours since the customer last wrote), 190 (access
# token invalid or expired), 100 (invalid parameter), 136025 (verify code error), 131062
# (Business-scoped User ID (BSUID) recipients are not supported for this message: e.g.
# an authentication template sent to a BSUID; send it to the phone instead)...
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


_error_decoder = msgspec.json.Decoder(_ErrorBody)
_send_decoder = msgspec.json.Decoder(_SendAnswer)
_success_decoder = msgspec.json.Decoder(_Success)


class GraphClient:
    """Calls `base_url` (e.g. "https://graph.facebook.com/v21.0") on `session`."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, *, timeout_s: float = 10.0
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send_text(self, phone_number_id: str, token: str, to: Recipient, text: str) -> str:
        """Sends a free-form text (only inside the 24-hour window); returns the wamid.
        ValueError, before any request, when `to` names no one."""
        return await self._send(
            phone_number_id,
            token,
            {
                "messaging_product": "whatsapp",
                **to.request_fields(),
                "type": "text",
                "text": {"preview_url": False, "body": text},
            },
        )

    async def send_template(
        self, phone_number_id: str, token: str, to: Recipient, name: str, language: str
    ) -> str:
        """Sends an approved template (allowed outside the window); returns the wamid.
        ValueError, before any request, when `to` names no one."""
        return await self._send(
            phone_number_id,
            token,
            {
                "messaging_product": "whatsapp",
                **to.request_fields(),
                "type": "template",
                "template": {"name": name, "language": {"code": language}},
            },
        )

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
        self, phone_number_id: str, edge: str, token: str, payload: dict[str, Any]
    ) -> None:
        status, body = await self._post(phone_number_id, edge, token, payload)
        try:
            if _success_decoder.decode(body).success:
                return
        except msgspec.DecodeError:
            pass
        raise GraphError(status, None, f"{edge} did not succeed", False)

    async def _post(
        self, phone_number_id: str, edge: str, token: str, payload: dict[str, Any]
    ) -> tuple[int, bytes]:
        """The status and body of a 2xx answer; raises GraphError for anything else."""
        url = f"{self._base}/{quote(phone_number_id, safe='')}/{edge}"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        # `from None` throughout: aiohttp's exceptions can carry the request's headers.
        try:
            async with self._session.post(
                url, data=msgspec.json.encode(payload), headers=headers, timeout=self._timeout
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
