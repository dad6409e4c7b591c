"""X-Hub-Signature-256: Meta signs each webhook body with the app secret (HMAC-SHA256);
the receiver only verifies it."""

import hashlib
import hmac
from collections.abc import Iterable
from enum import StrEnum

PREFIX = "sha256="


class SignatureFailure(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    MISMATCH = "mismatch"


class SignatureError(Exception):
    def __init__(self, failure: SignatureFailure) -> None:
        super().__init__(failure.value)
        self.failure = failure


def signing_secret(body: bytes, header: str | None, secrets: Iterable[str]) -> str:
    """The app secret that signed `body`; raises SignatureError when none did.

    Every configured secret is tried with a constant-time comparison, so the answer's
    timing says nothing about how much of a forged signature was right.
    """
    if not header:
        raise SignatureError(SignatureFailure.MISSING)
    if not header.startswith(PREFIX):
        raise SignatureError(SignatureFailure.MALFORMED)
    try:
        claimed = bytes.fromhex(header[len(PREFIX) :])
    except ValueError:
        raise SignatureError(SignatureFailure.MALFORMED) from None
    if len(claimed) != hashlib.sha256().digest_size:
        raise SignatureError(SignatureFailure.MALFORMED)
    match: str | None = None
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if hmac.compare_digest(expected, claimed):
            match = secret
    if match is None:
        raise SignatureError(SignatureFailure.MISMATCH)
    return match
