"""A real S3-speaking server for tests: moto's, on a free loopback port, spoken to over
HTTP through aiobotocore like any bucket. Each test module that needs one declares its
own session fixture over `moto_server()` (a fixture imported from here would be an
unused import to the linters)."""

import uuid
from collections.abc import Iterator
from typing import Any

from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer

# moto accepts any keys; passing them keeps the tests off the machine's own AWS setup.
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-never-shown"
REGION = "us-east-1"


def moto_server() -> Iterator[str]:
    """Starts the server; yields its endpoint URL; stops it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def raw_client(endpoint: str) -> Any:
    """A plain aiobotocore S3 client, to make buckets and look at what a store wrote."""
    return get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


async def new_bucket(client: Any) -> str:
    name = f"media-{uuid.uuid4().hex[:12]}"
    await client.create_bucket(Bucket=name)
    return name


async def s3_names(client: Any, bucket: str) -> list[str]:
    listed = await client.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))
