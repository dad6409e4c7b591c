"""JSON error answers, one shape everywhere: {"error": {"code", "message"[, "field"]}}."""

from aiohttp import web


def error_body(code: str, message: str, field: str | None = None) -> dict[str, object]:
    error: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    return web.json_response(error_body(code, message, field), status=status)
