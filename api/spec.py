"""The API's endpoints declared once: the router and the OpenAPI 3.1 document are both
built from these declarations, so the document cannot drift from what is served."""

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from api.schemas import ErrorBody

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Every endpoint can answer these; their bodies are ErrorBody.
COMMON_ERRORS = {
    400: "Bad request: malformed JSON or a bad path or query parameter (named in `field`)",
    401: "No bearer token, or one Parley does not know",
    503: "Kafka or Redis is unavailable (`kafka_unavailable`: nothing was done)",
}
ERROR_TEXT = {
    401: "The token signs nobody in",
    403: "The caller's role does not allow this",
    404: "No such resource, or one the caller cannot see",
    409: "Conflicts with the current state",
    413: "The body is too large",
    422: "A body field that does not fit (named in `field`)",
    502: "The Graph API refused or failed (Meta's code and title in `message`)",
}
BINARY = {"type": "string", "format": "binary"}
_PATH_PARAMETER = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    status: int  # the success status
    response: Any = None  # the success body's type; None for an empty body
    body: Any = None  # the request body's type
    query: Any = None  # a struct whose fields are the query parameters
    errors: tuple[int, ...] = ()
    extra: dict[int, tuple[str, Any]] = field(default_factory=dict)  # other answers
    tag: str = "api"
    public: bool = False  # needs no token
    media: str = "application/json"  # the success body's media type
    file_body: bool = False  # the request body is a file (its type in Content-Type)


def add_routes(app: web.Application, endpoints: Sequence[Endpoint], *, mount: str) -> None:
    """The endpoints on `app`, a sub-application to be mounted at `mount`: the paths
    declared (and documented) in full are routed relative to it."""
    for endpoint in endpoints:
        if not endpoint.path.startswith(f"{mount}/"):
            raise ValueError(f"{endpoint.path} is not under {mount}")
        app.router.add_route(endpoint.method, endpoint.path.removeprefix(mount), endpoint.handler)


def openapi(endpoints: Sequence[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    types = {ErrorBody}
    for endpoint in endpoints:
        types.update(t for t in (endpoint.response, endpoint.body) if t is not None)
        types.update(kind for _, kind in endpoint.extra.values() if kind is not None)
    ordered = sorted(types, key=lambda kind: kind.__name__)
    schemas, components = msgspec.json.schema_components(
        ordered, ref_template="#/components/schemas/{name}"
    )
    ref = dict(zip(ordered, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, ref)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(endpoint: Endpoint, ref: dict[Any, Any]) -> dict[str, Any]:
    name = endpoint.handler.__name__
    operation: dict[str, Any] = {
        "operationId": name,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint),
        "responses": {},
    }
    if endpoint.public:
        operation["security"] = []
    if endpoint.file_body:
        operation["requestBody"] = {"required": True, "content": {"*/*": {"schema": BINARY}}}
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref[endpoint.body]}},
        }
    responses = operation["responses"]
    responses[str(endpoint.status)] = _response(
        "Success", endpoint.response, ref, media=endpoint.media
    )
    for status, (text, kind) in endpoint.extra.items():
        responses[str(status)] = _response(text, kind, ref)
    errors = {**({} if endpoint.public else COMMON_ERRORS)}
    if endpoint.body is not None or endpoint.file_body:
        errors.update({400: COMMON_ERRORS[400], 413: ERROR_TEXT[413], 422: ERROR_TEXT[422]})
    errors.update({status: ERROR_TEXT[status] for status in endpoint.errors})
    for status, text in sorted(errors.items()):
        responses.setdefault(str(status), _response(text, ErrorBody, ref))
    return operation


def _response(
    text: str, kind: Any, ref: dict[Any, Any], *, media: str = "application/json"
) -> dict[str, Any]:
    if kind is None and media != "application/json":
        return {"description": text, "content": {media: {"schema": BINARY}}}
    if kind is None:
        return {"description": text}
    return {"description": text, "content": {media: {"schema": ref[kind]}}}


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(endpoint.path)
    ]
    if endpoint.query is not None:
        (schema,), components = msgspec.json.schema_components(
            [endpoint.query], ref_template="{name}"
        )
        properties = components[schema["$ref"]]["properties"]
        for name, property_schema in properties.items():
            parameters.append(
                {"name": name, "in": "query", "required": False, "schema": property_schema}
            )
    return parameters
