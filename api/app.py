"""The /v1 API as an aiohttp sub-application, for the process that serves it to mount
at MOUNT. It holds its routes, its error middleware and the callback it was given; the
resources it reads (api/appkeys.py) are the mounting app's, found through
`request.config_dict`."""

from collections.abc import Callable

from aiohttp import web

from api.appkeys import ON_CHANNEL_ACTIVE
from api.errors import api_errors
from api.routes import ENDPOINTS
from api.spec import add_routes
from parley.channels import Channel

MOUNT = "/v1"


def create_app(*, on_channel_active: Callable[[Channel], None]) -> web.Application:
    """The API, to mount with `app.add_subapp(MOUNT, ...)`. `on_channel_active` is
    called with each channel that registration makes active."""
    api = web.Application()
    api[ON_CHANNEL_ACTIVE] = on_channel_active
    api.middlewares.append(api_errors)
    add_routes(api, ENDPOINTS, mount=MOUNT)
    return api
