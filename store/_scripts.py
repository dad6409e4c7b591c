"""The Lua scripts: loaded once where the client is built, called by their SHA."""

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources

import msgspec
from redis.asyncio import RedisCluster

from parley.redis import RedisClient


class ScriptCall(msgspec.Struct, frozen=True):
    """One script run. Calls with the same `order_key` must run in list order."""

    order_key: str
    keys: list[str]
    args: list[str | bytes]


def source(name: str) -> str:
    """The text of store/lua/{name}.lua."""
    return (resources.files("store") / "lua" / f"{name}.lua").read_text()


class Scripts:
    """SHA1s of store/lua/*.lua on the server. Call `load()` again after a
    NoScriptError: a restarted Redis forgets its script cache."""

    NAMES = ("load", "apply")

    def __init__(self) -> None:
        self.source = {name: source(name) for name in self.NAMES}
        self.sha: dict[str, str] = {}

    async def load(self, client: RedisClient) -> None:
        # On a cluster, SCRIPT LOAD goes to every primary.
        for name, source in self.source.items():
            self.sha[name] = await client.script_load(source)

    async def run_many(
        self, client: RedisClient, name: str, calls: Sequence[ScriptCall]
    ) -> list[object]:
        """Run `name` for every call, answers in call order.

        On one Redis: one pipelined round trip. A cluster client refuses scripts in
        pipelines, so there each order_key's calls run in order, concurrently with the
        other keys' (all of a key's calls live on one node anyway).
        """
        sha = self.sha[name]
        if not isinstance(client, RedisCluster):
            pipe = client.pipeline(transaction=False)
            for call in calls:
                pipe.evalsha(sha, len(call.keys), *call.keys, *call.args)
            return list(await pipe.execute()) if calls else []

        chains: dict[str, list[int]] = defaultdict(list)
        for position, call in enumerate(calls):
            chains[call.order_key].append(position)
        answers: list[object] = [None] * len(calls)

        async def run_chain(positions: list[int]) -> None:
            for position in positions:
                call = calls[position]
                answers[position] = await client.evalsha(
                    sha, len(call.keys), *call.keys, *call.args
                )

        await asyncio.gather(*(run_chain(positions) for positions in chains.values()))
        return answers
