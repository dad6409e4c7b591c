"""Where the engine's time goes, per event (docs/profiles/engine.md): its parts' CPU in
this process (cProfile on a process-time clock, so other processes on the machine do
not count), Redis' own time in the scripts (INFO commandstats), on one stream applied
in batches as the consumer does, Kafka left out (its decoding is measured on its own).

    python -m tests.bench.engine_profile [mixed|new] [events]
"""

import asyncio
import cProfile
import pstats
import sys
import time
from typing import cast

from devstack.servers import start_redis
from engine.applier import Applier
from parley.events import Event, decode_event, encode
from parley.redis import connect_redis
from parley.runtime import tune_gc
from store.channels import seed_channels
from store.conversations import ConversationStore
from tests import factory as f
from tests.conftest import EU, US
from tests.streams import stream

BATCH = 5000  # the consumer's max_records
# (label, the functions whose cumulative time it is)
PARTS = (
    ("machine: transition", ("transition",)),
    ("records: what a decision writes", ("records",)),
    ("alias resolution", ("find", "claims")),
    ("read round: packing, Redis, decoding states", ("_read",)),
    ("write: packing apply.lua's arguments", ("apply_call",)),
)


def events_of(kind: str, count: int) -> list[Event]:
    t0 = time.time() - 3600
    if kind == "mixed":
        return stream(count, 20_000, (EU.id, US.id), t0=t0)
    return [
        f.customer((EU.id, US.id)[n % 2], f"1555{n:07d}", t0 + n / 1000, wamid=f"wamid.{n}")
        for n in range(count)
    ]


async def profile(kind: str, count: int) -> None:
    tune_gc()  # as `python -m engine` does
    server = start_redis()
    try:
        client = connect_redis(f"redis://127.0.0.1:{server.port}/0", read_timeout_s=None)
        store = ConversationStore(client)
        await store.start()
        await seed_channels(client, [EU, US])
        raw = [encode(event) for event in events_of(kind, count)]
        started = time.process_time()
        events = [decode_event(record) for record in raw]
        decode_us = (time.process_time() - started) / count * 1e6

        applier = Applier(store, time.time)
        plain = time.process_time()
        for start in range(0, count // 2, BATCH):  # unprofiled: the true CPU an event
            await applier.apply(events[start : start + BATCH])
        cpu_us = (time.process_time() - plain) / (count // 2) * 1e6
        await client.config_resetstat()
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for start in range(count // 2, count, BATCH):
            await applier.apply(events[start : start + BATCH])
        profiler.disable()
        measured = count - count // 2
        stats = pstats.Stats(profiler)
        raw_stats = cast(dict[tuple[str, int, str], tuple[int, int, float, float, object]],
                         stats.stats)  # type: ignore[attr-defined]  # fmt: skip
        total = sum(entry[2] for entry in raw_stats.values())
        commands = await client.info("commandstats")
        lua_us = sum(v["usec"] for k, v in commands.items() if k.startswith("cmdstat_evalsha"))
        inner = {k.removeprefix("cmdstat_"): v for k, v in commands.items() if "evalsha" not in k}
        await client.aclose()
    finally:
        server.stop()
    print(f"\n== {kind}: {count:,} events in batches of {BATCH:,}")
    print(f"  engine process CPU, unprofiled              {cpu_us:6.1f} us an event")
    print(f"  decoding a Kafka record (msgspec)           {decode_us:6.1f} us")
    for label, names in PARTS:
        cumulative = sum(entry[3] for (_, _, name), entry in raw_stats.items() if name in names)
        print(f"  {label:43s} {cumulative / total * 100:5.1f} % of the profiled CPU")
    print(f"  Redis: load.lua + apply.lua, server time    {lua_us / measured:6.1f} us an event")
    busiest = sorted(inner.items(), key=lambda item: -item[1]["usec"])[:6]
    for name, value in busiest:
        print(
            f"    {name:12s} {value['calls'] / measured:5.2f} calls, "
            f"{value['usec'] / measured:5.2f} us an event"
        )


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "mixed"
    asyncio.run(profile(which, int(sys.argv[2]) if len(sys.argv) > 2 else 40_000))
