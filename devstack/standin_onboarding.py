"""The Graph API stand-in's onboarding edges, as Meta documents them: a number's
business profile (`/{phone-number-id}/whatsapp_business_profile`), the Resumable Upload
API (`/{app-id}/uploads`, `/upload:...`) whose handles set a profile picture, a phone
number's fields (`GET /{phone-number-id}?fields=...`), and message templates created
and deleted on a business account (`POST`/`DELETE /{waba-id}/message_templates`).

Controls play Meta's side of onboarding (a template's review; a number's display name,
quality and messaging limit) and post the matching signed webhooks. Every request the
edges receive is kept in `requests`, without its token, for tests to compare with
Meta's documented shapes.

`StandIn.onboarding` holds this state; `create_app` (devstack.graph_standin) registers
`add_edges` under each version prefix and `add_controls` once. The records and the checks
without HTTP are devstack.standin_onboarding_rules'.
"""

import base64
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
import msgspec
from aiohttp import web

from devstack.graph_standin import (
    OAUTH_REFUSAL,
    WEBHOOK_TIMEOUT_S,
    Edge,
    Handler,
    StandIn,
    Template,
    _invalid,
    _json,
    _json_object,
    _params,
    _token,
    _unknown_object,
    meta_error,
    template_id,
)
from devstack.signing import sign
from devstack.standin_onboarding_rules import (
    DEFAULT_VERIFIED_NAME,
    DUPLICATE_SUBCODE,
    DUPLICATE_TITLE,
    NUMBER_FIELDS,
    PICTURE_PATH,
    PROFILE_FIELDS,
    UPLOAD_TYPES,
    BusinessProfile,
    LoggedRequest,
    NumberRecord,
    NumberUpdate,
    Review,
    ReviewStatus,
    Upload,
    WebhookChange,
    business_webhook,
    display_phone_number,
    logged_request,
    number_decision,
    profile_problem,
    template_problem,
)
from parley.business_profile import VERTICALS

# Its own public names, and the records code imported from here before the rules had a
# module of their own (devstack.standin_onboarding_rules holds the rest).
__all__ = [
    "VERTICALS",
    "Authorize",
    "BusinessProfile",
    "LoggedRequest",
    "NoWebhook",
    "NotFound",
    "NumberRecord",
    "NumberUpdate",
    "Onboarding",
    "Review",
    "ReviewStatus",
]

Authorize = Callable[[web.Request, str], web.Response | None]
T = TypeVar("T")


class NotFound(LookupError):
    """A control names a template or number the stand-in does not have."""


class NoWebhook(Exception):
    """A control cannot post its webhook (no webhook_url, business account or secret)."""


class Onboarding:
    """The onboarding edges' state, held by a `StandIn`: business profiles, number
    records, upload sessions and the requests received; the business accounts'
    templates are the stand-in's own `templates`."""

    def __init__(self, standin: StandIn) -> None:
        self.standin = standin
        self.profiles: dict[str, BusinessProfile] = {}
        self.numbers: dict[str, NumberRecord] = {}
        self.uploads: dict[str, Upload] = {}  # by key ("upload:<opaque>")
        self.requests: list[LoggedRequest] = []
        self._handles: dict[str, Upload] = {}
        self._pictures: dict[str, Upload] = {}

    def number(self, phone_number_id: str) -> NumberRecord:
        """The number's record, made on first use with Meta's defaults for a new number
        and the stand-in's `verified_names` (else DEFAULT_VERIFIED_NAME)."""
        record = self.numbers.get(phone_number_id)
        if record is None:
            name = self.standin.verified_names.get(phone_number_id, DEFAULT_VERIFIED_NAME)
            record = NumberRecord(phone_number_id, display_phone_number(phone_number_id), name)
            self.numbers[phone_number_id] = record
        return record

    def profile(self, phone_number_id: str) -> BusinessProfile:
        return self.profiles.get(phone_number_id, BusinessProfile())

    async def review_template(
        self,
        waba_id: str,
        name: str,
        language: str,
        status: ReviewStatus,
        reason: str | None = None,
    ) -> int:
        """Meta's review of a template: its status set, and a signed
        `message_template_status_update` webhook posted; returns the webhook's HTTP
        status. NotFound: no such template; NoWebhook: nothing changed, as it could
        not be told; aiohttp.ClientError, OSError or TimeoutError: changed, not told."""
        known = self.standin.templates.get(waba_id, [])
        index = next(
            (i for i, t in enumerate(known) if (t.name, t.language) == (name, language)), None
        )
        if index is None:
            raise NotFound(f"no template {name} in {language} on {waba_id}")
        secret = self._signing_secret(waba_id)
        template = msgspec.structs.replace(known[index], status=status)
        known[index] = template
        value = {
            "event": status,
            "message_template_id": int(_template_id(template)),
            "message_template_name": name,
            "message_template_language": language,
            "reason": reason or "NONE",
            "message_template_category": template.category,
        }
        [posted] = await self._post(waba_id, secret, [("message_template_status_update", value)])
        return posted

    async def update_number(self, phone_number_id: str, update: NumberUpdate) -> dict[str, int]:
        """Meta's decision on a number (`number_decision`), applied, and its webhooks
        posted to the number's business account; returns {field: HTTP status}.
        ValueError: an update that says nothing; NoWebhook: nothing changed, as it could
        not be told; aiohttp.ClientError, OSError or TimeoutError: changed, not told."""
        record, changes = number_decision(self.number(phone_number_id), update)
        if not changes:
            self.numbers[phone_number_id] = record
            return {}
        waba_id = self.standin.wabas.get(phone_number_id)
        if waba_id is None:
            raise NoWebhook(f"{phone_number_id} has no business account to post webhooks for")
        secret = self._signing_secret(waba_id)
        self.numbers[phone_number_id] = record
        posted = await self._post(waba_id, secret, changes)
        return {name: status for (name, _), status in zip(changes, posted, strict=True)}

    # Routes

    def add_edges(self, router: web.UrlDispatcher, prefix: str) -> None:
        """The Graph edges under `prefix` ("" or a version). Before `GET
        {prefix}/{media_id}`, which would otherwise take `GET /upload:...`."""
        profile = f"{prefix}/{{phone_number_id}}/whatsapp_business_profile"
        upload = f"{prefix}/{{upload_id:upload:[^/]+}}"
        templates = f"{prefix}/{{waba_id}}/message_templates"
        routes: list[tuple[str, str, Edge, str, Authorize | None]] = [
            ("GET", profile, self.get_profile, "phone_number_id", None),
            ("POST", profile, self.set_profile, "phone_number_id", None),
            ("POST", f"{prefix}/{{app_id}}/uploads", self.start_upload, "app_id", self._reader),
            ("POST", upload, self.upload_chunk, "upload_id", self._authorize_oauth),
            ("GET", upload, self.upload_status, "upload_id", self._authorize_upload_reader),
            ("POST", templates, self.create_template, "waba_id", self._authorize_waba),
            ("DELETE", templates, self.delete_template, "waba_id", self._authorize_waba),
        ]
        for method, path, handle, key, authorize in routes:
            handler = self.standin.edge(handle, key=key, authorize=authorize)
            router.add_route(method, path, self._logged(handler))

    def by_id(self, media: Handler) -> Handler:
        """`GET /{id}`: a phone number's fields for a number the stand-in has a token
        for (and no media of that id), else `media` as before."""
        number = self._logged(self.standin.edge(self.number_fields, key="media_id"))

        async def handler(request: web.Request) -> web.StreamResponse:
            object_id = request.match_info["media_id"]
            if object_id in self.standin.tokens and object_id not in self.standin.media:
                return await number(request)
            return await media(request)

        return handler

    def add_controls(self, router: web.UrlDispatcher) -> None:
        router.add_post(
            "/_standin/templates/{waba_id}/{name}/{language}/review", self.review_control
        )
        router.add_get("/_standin/numbers/{phone_number_id}", self.show_number)
        router.add_post("/_standin/numbers/{phone_number_id}", self.number_control)
        router.add_get("/_standin/profiles", self.list_profiles)
        router.add_get("/_standin/requests", self.list_requests)
        router.add_get(PICTURE_PATH + "{picture_id}", self.picture)

    # The Graph edges, each behind `StandIn.edge` (token, faults) and `_logged`

    async def get_profile(self, request: web.Request, phone_number_id: str) -> web.Response:
        """`{"data": [{"messaging_product": "whatsapp", ...}]}`: the fields asked for
        (all without `fields`) that are set."""
        fields = _fields(request, PROFILE_FIELDS)
        if isinstance(fields, web.Response):
            return fields
        shown = msgspec.to_builtins(self.profile(phone_number_id))
        kept = {name: value for name, value in shown.items() if name in fields}
        return _json({"data": [{"messaging_product": "whatsapp", **kept}]})

    async def set_profile(self, request: web.Request, phone_number_id: str) -> web.Response:
        """All of it or nothing: one refused field leaves the profile as it was."""
        body = await _json_object(request)
        if body is None:
            return _invalid("The request body must be a JSON object")
        pictures = {handle: upload.file_type for handle, upload in self._handles.items()}
        problem = profile_problem(body, pictures)
        if problem is not None:
            return _invalid(problem)
        changes = {name: value for name, value in body.items() if name in PROFILE_FIELDS}
        handle = body.get("profile_picture_handle")
        if handle is not None:
            picture_id = secrets.token_urlsafe(16)
            self._pictures[picture_id] = self._handles[handle]
            origin = request.url.origin()
            changes["profile_picture_url"] = str(origin.with_path(PICTURE_PATH + picture_id))
        profile = msgspec.structs.replace(self.profile(phone_number_id), **changes)
        self.profiles[phone_number_id] = profile
        return _json({"success": True})

    async def start_upload(self, request: web.Request, app_id: str) -> web.Response:
        """`?file_name&file_length&file_type` -> `{"id": "upload:<opaque>?sig=<sig>"}`."""
        params = await _params(request)
        file_type = params.get("file_type")
        if file_type not in UPLOAD_TYPES:
            return _invalid(f"Param file_type must be one of {', '.join(UPLOAD_TYPES)}")
        length = str(params.get("file_length", ""))
        if not re.fullmatch(r"[0-9]+", length) or int(length) < 1:
            return _invalid("Param file_length must be a positive integer")
        opaque = base64.urlsafe_b64encode(f"1:attachment:{uuid.uuid4()}".encode()).decode()
        upload = Upload(
            "upload:" + opaque,
            "AR" + secrets.token_urlsafe(12),
            file_type,
            int(length),
            str(params["file_name"]) if "file_name" in params else None,
        )
        self.uploads[upload.key] = upload
        return _json({"id": upload.id})

    async def upload_chunk(self, request: web.Request, key: str) -> web.Response:
        """Raw bytes from the `file_offset` header's offset, which must be what has
        come so far: `{"h": handle}` once every byte has, else `{"file_offset": n}`."""
        upload = self._upload(request, key)
        if isinstance(upload, web.Response):
            return upload
        received = len(upload.data)
        offset = request.headers.get("file_offset", "")
        if not re.fullmatch(r"[0-9]+", offset) or int(offset) != received:
            return _invalid(f"Header file_offset must be {received}, the bytes received so far")
        data = await request.read()
        if received + len(data) > upload.file_length:
            return _invalid(
                f"Header file_offset plus the body exceed file_length ({upload.file_length})"
            )
        upload.data.extend(data)
        if len(upload.data) < upload.file_length:
            return _json({"file_offset": len(upload.data)})
        if upload.handle is None:
            kind = base64.b64encode(upload.file_type.encode()).decode()
            upload.handle = f"4::{kind}:{secrets.token_urlsafe(32)}"
            self._handles[upload.handle] = upload
        return _json({"h": upload.handle})

    async def upload_status(self, request: web.Request, key: str) -> web.Response:
        upload = self._upload(request, key)
        if isinstance(upload, web.Response):
            return upload
        return _json({"id": upload.id, "file_offset": len(upload.data)})

    async def number_fields(self, request: web.Request, phone_number_id: str) -> web.Response:
        """`{"id": ..., ...}`: the fields asked for (all without `fields`)."""
        fields = _fields(request, NUMBER_FIELDS)
        if isinstance(fields, web.Response):
            return fields
        return _json({"id": phone_number_id, **self.number(phone_number_id).fields(fields)})

    async def create_template(self, request: web.Request, waba_id: str) -> web.Response:
        """A new template, PENDING review: `{"id", "status", "category"}`."""
        body = await _json_object(request)
        if body is None:
            return _invalid("The request body must be a JSON object")
        problem = template_problem(body)
        if problem is not None:
            return _invalid(problem)
        known = self.standin.templates.setdefault(waba_id, [])
        name, language = body["name"], body["language"]
        if any((t.name, t.language) == (name, language) for t in known):
            return _duplicate(language)
        template = Template(
            name,
            language,
            body["components"],
            status="PENDING",
            category=body["category"],
            id=self._new_template_id(),
            parameter_format=body.get("parameter_format", "POSITIONAL"),
        )
        known.append(template)
        return _json({"id": template.id, "status": template.status, "category": template.category})

    async def delete_template(self, request: web.Request, waba_id: str) -> web.Response:
        """`?name=X`: every language of it; with `&hsm_id=ID`, only that one."""
        name, hsm_id = request.query.get("name", ""), request.query.get("hsm_id")
        if not name:
            return _invalid("Param name is required")
        known = self.standin.templates.get(waba_id, [])

        def doomed(template: Template) -> bool:
            return template.name == name and hsm_id in (None, _template_id(template))

        if not any(doomed(template) for template in known):
            which = f" with hsm_id {hsm_id}" if hsm_id is not None else ""
            return _invalid(f"Param name: no template {name}{which} on this account")
        self.standin.templates[waba_id] = [t for t in known if not doomed(t)]
        return _json({"success": True})

    # Controls, without a token

    async def review_control(self, request: web.Request) -> web.StreamResponse:
        """Body {"status", "reason"?}: answers {"posted": the webhook's HTTP status}."""
        try:
            review = msgspec.json.decode(await request.read(), type=Review)
        except msgspec.DecodeError as error:
            return _json({"error": f"expected {{status, reason?}}: {error}"}, 400)
        where = request.match_info
        return await _control(
            self.review_template(
                where["waba_id"], where["name"], where["language"], review.status, review.reason
            ),
            lambda posted: {"posted": posted},
        )

    async def number_control(self, request: web.Request) -> web.StreamResponse:
        """Body: a NumberUpdate. Answers {"record", "posted": {field: HTTP status}}."""
        phone_number_id = request.match_info["phone_number_id"]
        if phone_number_id not in self.standin.tokens:
            return _json({"error": f"the stand-in has no number {phone_number_id}"}, 404)
        try:
            update = msgspec.json.decode(await request.read(), type=NumberUpdate)
        except msgspec.DecodeError as error:
            return _json({"error": f"expected a number update: {error}"}, 400)
        return await _control(
            self.update_number(phone_number_id, update),
            lambda posted: {"record": self.number(phone_number_id), "posted": posted},
        )

    async def show_number(self, request: web.Request) -> web.StreamResponse:
        phone_number_id = request.match_info["phone_number_id"]
        if phone_number_id not in self.standin.tokens:
            return _json({"error": f"the stand-in has no number {phone_number_id}"}, 404)
        return _json(self.number(phone_number_id))

    async def list_profiles(self, request: web.Request) -> web.StreamResponse:
        return _json(self.profiles)

    async def list_requests(self, request: web.Request) -> web.StreamResponse:
        return _json(self.requests)

    async def picture(self, request: web.Request) -> web.StreamResponse:
        upload = self._pictures.get(request.match_info["picture_id"])
        if upload is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=bytes(upload.data), content_type=upload.file_type)

    # Internals

    def _logged(self, handler: Handler) -> Handler:
        async def logged(request: web.Request) -> web.StreamResponse:
            self.requests.append(logged_request(request, await request.read()))
            return await handler(request)

        return logged

    def _upload(self, request: web.Request, key: str) -> Upload | web.Response:
        upload = self.uploads.get(key)
        if upload is None:
            return _unknown_object(key, request.method.lower())
        if not secrets.compare_digest(request.query.get("sig", ""), upload.sig):
            # Meta's 104; most often the id's "?sig=" was sent percent-encoded.
            return _json(
                meta_error(104, "Incorrect signature", "Param sig must be the upload id's"), 400
            )
        return upload

    def _authorize_oauth(self, request: web.Request, object_id: str) -> web.Response | None:
        """Meta documents `Authorization: OAuth <token>` for an upload's bytes."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "oauth" and token and token in self.standin.tokens.values():
            return None
        return _json(meta_error(190, "", message=OAUTH_REFUSAL), 401)

    def _reader(self, request: web.Request, object_id: str) -> web.Response | None:
        return self.standin._authorize_reader(request, object_id)

    def _authorize_upload_reader(self, request: web.Request, object_id: str) -> web.Response | None:
        """OAuth, as for the bytes, or Bearer."""
        if self._authorize_oauth(request, object_id) is None:
            return None
        return self._reader(request, object_id)

    def _authorize_waba(self, request: web.Request, waba_id: str) -> web.Response | None:
        """A token of a number of the account. A number without an account yet joins
        this one, so numbers registered at runtime can create templates."""
        token = _token(request)
        numbers = [
            number for number, known in self.standin.tokens.items() if token and known == token
        ]
        if not numbers:
            return _json(meta_error(190, "", message=OAUTH_REFUSAL), 401)
        wabas = self.standin.wabas
        if any(wabas.get(number) == waba_id for number in numbers):
            return None
        unbound = [number for number in numbers if number not in wabas]
        if not unbound:
            return _unknown_object(waba_id, request.method.lower())
        wabas.update(dict.fromkeys(unbound, waba_id))
        return None

    def _signing_secret(self, waba_id: str) -> str:
        """The app secret of a number of the account; else the first the stand-in knows
        (one app signs every webhook of its numbers, and numbers registered at runtime
        have none here)."""
        if self.standin.webhook_url is None:
            raise NoWebhook("the stand-in has no webhook_url")
        app_secrets = self.standin.app_secrets
        own = (
            app_secrets[n]
            for n, w in self.standin.wabas.items()
            if w == waba_id and n in app_secrets
        )
        secret = next(own, None) or next(iter(app_secrets.values()), None)
        if secret is None:
            raise NoWebhook("the stand-in has no app secret to sign webhooks with")
        return secret

    async def _post(self, waba_id: str, secret: str, changes: Sequence[WebhookChange]) -> list[int]:
        """One signed webhook call per change, in order; their HTTP statuses."""
        assert self.standin.webhook_url is not None  # _signing_secret checked
        at = int(self.standin.clock())
        answers: list[int] = []
        timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for change in changes:
                body = msgspec.json.encode(business_webhook(waba_id, at, change))
                headers = {
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": sign(body, secret),
                }
                async with session.post(
                    self.standin.webhook_url, data=body, headers=headers
                ) as answer:
                    await answer.read()
                    answers.append(answer.status)
        return answers

    def _new_template_id(self) -> str:
        taken = {_template_id(t) for known in self.standin.templates.values() for t in known}
        while (new := str(10**14 + secrets.randbelow(9 * 10**14))) in taken:
            pass
        return new


async def _control(work: Awaitable[T], answer: Callable[[T], Any]) -> web.Response:
    """A control's outcome as JSON: 404 unknown, 400 meaningless, 409 cannot be told,
    502 the webhook not delivered."""
    try:
        posted = await work
    except NotFound as error:
        return _json({"error": str(error)}, 404)
    except NoWebhook as error:
        return _json({"error": str(error)}, 409)
    except ValueError as error:
        return _json({"error": str(error)}, 400)
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        return _json({"error": f"webhook not delivered: {type(error).__name__}: {error}"}, 502)
    return _json(answer(posted))


def _fields(request: web.Request, known: Sequence[str]) -> list[str] | web.Response:
    """`?fields=a,b`: the names asked for (all without it), or Meta's 100 for one the
    node does not have."""
    asked = [name.strip() for name in request.query.get("fields", "").split(",") if name.strip()]
    for name in asked:
        if name not in known:
            return _invalid(f"Tried accessing nonexisting field ({name})")
    return asked or list(known)


def _duplicate(language: str) -> web.Response:
    body = meta_error(100, "Invalid parameter", DUPLICATE_TITLE, message="Invalid parameter")
    body["error"].update(
        error_subcode=DUPLICATE_SUBCODE,
        is_transient=False,
        error_user_title=DUPLICATE_TITLE,
        error_user_msg=f"There is already {language} content for this template. You can"
        " create a new template and try again.",
    )
    return _json(body, 400)


def _template_id(template: Template) -> str:
    return template.id or template_id(template.name, template.language)
