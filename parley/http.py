"""JSON error answers, one shape everywhere: {"error": {"code": ..., "message": ...}}."""

from aiohttp import web


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
