"""Signing webhook bodies as Meta does, for tests, the demo, the benchmarks and the Graph
stand-in; the receiver only verifies (ingest.signature)."""

import hashlib
import hmac

from ingest.signature import PREFIX


def sign(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 value Meta would send for `body` signed with `secret`."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
