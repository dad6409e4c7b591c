"""`make bench`: every benchmark, each with its baseline measured in the same run."""

import asyncio

from tests.bench import (
    api_bench,
    engine_bench,
    ingest_bench,
    media_bench,
    outbound_bench,
    routing_bench,
    stream_bench,
    sweeper_bench,
)


async def main() -> None:
    await ingest_bench.main()
    await engine_bench.main()
    await sweeper_bench.main()
    await routing_bench.main()
    await api_bench.main()
    await outbound_bench.main()
    await stream_bench.main()
    await media_bench.main()


if __name__ == "__main__":
    asyncio.run(main())
