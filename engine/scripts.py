"""The Lua scripts, loaded once where the client is built and called by their SHA."""

from importlib import resources

from redis.exceptions import NoScriptError

from parley.redis import RedisClient


class Scripts:
    """SHA1s of engine/lua/*.lua on the server. `load()` again after NoScriptError
    (a restarted Redis forgets its script cache)."""

    NAMES = ("apply", "resolve_due")

    def __init__(self) -> None:
        self.source = {
            name: (resources.files("engine") / "lua" / f"{name}.lua").read_text()
            for name in self.NAMES
        }
        self.sha: dict[str, str] = {}

    async def load(self, client: RedisClient) -> None:
        # On a cluster, SCRIPT LOAD goes to every primary.
        for name, source in self.source.items():
            self.sha[name] = await client.script_load(source)


__all__ = ["NoScriptError", "Scripts"]
