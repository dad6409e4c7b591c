"""Talking to the receiver as Meta does, for tests."""

import json

from aiohttp.test_utils import TestClient

from devstack.samples import text_message
from devstack.signing import sign
from parley.channels import Channel


async def post_message(
    client: TestClient,  # type: ignore[type-arg]
    channel: Channel,
    wa_id: str,
    wamid: str,
    at: int,
    text: str = "Hi, where is my order?",
) -> None:
    """A customer's text message, signed with the channel's app secret; asserts 200."""
    body = json.dumps(text_message(channel.id, wa_id, wamid, text, at)).encode()
    response = await client.post(
        "/webhooks/whatsapp",
        data=body,
        headers={"X-Hub-Signature-256": sign(body, channel.app_secret)},
    )
    assert response.status == 200, await response.text()
