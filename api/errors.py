"""The API's errors as exceptions, answered as JSON by one middleware."""

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web
from redis.exceptions import RedisError

from parley.graph import GraphError
from parley.http import error_response


class ApiError(Exception):
    """An answer other than success: status, a stable code, and what is wrong."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def unauthorized(message: str = "a valid bearer token is required") -> ApiError:
    return ApiError(HTTPStatus.UNAUTHORIZED, "unauthorized", message)


def forbidden(message: str, *, code: str = "forbidden") -> ApiError:
    return ApiError(HTTPStatus.FORBIDDEN, code, message)


def not_found(message: str) -> ApiError:
    return ApiError(HTTPStatus.NOT_FOUND, "not_found", message)


def conflict(code: str, message: str) -> ApiError:
    return ApiError(HTTPStatus.CONFLICT, code, message)


def invalid(field: str, message: str) -> ApiError:
    """A body field that does not fit: 422, naming the field."""
    return ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_field", message, field)


def bad_parameter(field: str, message: str) -> ApiError:
    """A path or query parameter that does not fit: 400, naming it."""
    return ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", message, field)


def graph_failed(error: GraphError) -> ApiError:
    """Meta said no (4xx: the number, token or request is wrong): 422; Meta did not
    answer, or failed (timeouts, 5xx): 502, try again."""
    if error.status is not None and error.status < 500:
        return ApiError(422, "graph_refused", f"Meta refused: {error}")
    return ApiError(502, "graph_unavailable", f"the Graph API failed: {error}")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# The longest an API request may take: Redis replies carry no timer of their own (a
# timer per reply cost more than the reply), so a hung Redis is bounded here.
REQUEST_TIMEOUT_S = 10.0


def _moves_a_file(request: web.Request) -> bool:
    return request.path.startswith("/v1/media/") or (
        request.method == "POST" and request.path.endswith("/uploads")
    )


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/"):  # `/v1` itself: aiohttp's own plain 404
        return await handler(request)
    # Files take as long as the network does: their reads and writes are bounded by
    # aiohttp's own timeouts instead. A stream is open as long as its client reads (cut
    # off, it got this 503 written into its body, and hung): it bounds its own Redis
    # steps (api/stream.py).
    unbounded = _moves_a_file(request) or request.path == "/v1/stream"
    bound = None if unbounded else REQUEST_TIMEOUT_S
    try:
        async with asyncio.timeout(bound):
            return await handler(request)
    except (TimeoutError, RedisError, OSError):
        return error_response(
            HTTPStatus.SERVICE_UNAVAILABLE, "store_unavailable", "Redis did not answer; try again"
        )
    except web.HTTPException as error:
        # aiohttp's own answers (no such route, wrong method, body too large) in the
        # API's JSON shape.
        if error.empty_body:
            raise
        code = error.reason.lower().replace(" ", "_")
        response = error_response(error.status, code, error.reason)
        if "Allow" in error.headers:  # a 405 says which methods there are
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except ApiError as error:
        response = error_response(error.status, error.code, error.message, error.field)
        if error.status == HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = 'Bearer realm="parley"'
        return response
