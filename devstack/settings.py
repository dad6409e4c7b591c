"""The development tools' own settings: read from the environment once, in each tool's
`main`, into one frozen struct. The runtime's settings are parley.settings."""

from collections.abc import Mapping
from typing import Annotated

import msgspec

from parley.settings import PREFIX, SettingsError

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]


class DevSettings(msgspec.Struct, frozen=True, kw_only=True):
    """`graph_standin_port` (PARLEY_GRAPH_STANDIN_PORT): where the Graph API stand-in
    listens, and where `make run` points PARLEY_GRAPH_URL."""

    graph_standin_port: Port = 8090


def dev_settings_from_env(env: Mapping[str, str]) -> DevSettings:
    """DevSettings from its `PARLEY_*` variables (the others are ignored, as are empty
    values); raises SettingsError naming the variable."""
    values = {
        field: env[PREFIX + field.upper()]
        for field in DevSettings.__struct_fields__
        if env.get(PREFIX + field.upper(), "") != ""
    }
    try:
        return msgspec.convert(values, DevSettings, strict=False)
    except msgspec.ValidationError as error:
        message = str(error)
        head, _, path = message.partition(" - at `$.")
        if path:
            message = f"{PREFIX}{path.rstrip('`').upper()}: {head}"
        raise SettingsError(message) from None
