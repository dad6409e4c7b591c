"""Send one signed customer message to the local receiver (make run), as Meta would.

Usage: .venv/bin/python -m devstack.send_webhook [wa_id] [text]
"""

import json
import sys
import time
import urllib.request
import uuid

from devstack.samples import text_message
from devstack.signing import sign
from devstack.stack import DEMO_CHANNELS
from parley.channels import load_channels


def main() -> None:
    wa_id = sys.argv[1] if len(sys.argv) > 1 else "16315551181"
    text = sys.argv[2] if len(sys.argv) > 2 else "Hi, where is my order?"
    channel = load_channels(str(DEMO_CHANNELS))[0]
    wamid = f"wamid.local.{uuid.uuid4().hex}"
    body = json.dumps(text_message(channel.id, wa_id, wamid, text, int(time.time()))).encode()
    request = urllib.request.Request(
        "http://127.0.0.1:8080/webhooks/whatsapp",
        data=body,
        headers={
            "X-Hub-Signature-256": sign(body, channel.app_secret),
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 (loopback)
        print(response.status, response.read().decode())


if __name__ == "__main__":
    main()
