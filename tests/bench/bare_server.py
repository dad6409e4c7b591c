"""The baseline for the receiver benchmark: aiohttp reading the body and answering 200."""

import sys

from aiohttp import web

from parley.runtime import tune_gc, use_uvloop


async def handle(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"ok": True})


if __name__ == "__main__":
    use_uvloop()  # the same runtime as the receiver, for a fair baseline
    tune_gc()
    app = web.Application()
    app.router.add_post("/webhooks/whatsapp", handle)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
