"""X-Hub-Signature-256 checking."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.signing import sign
from ingest.signature import SignatureError, SignatureFailure, signing_secret

SECRETS = ["first-secret", "second-secret"]


@given(body=st.binary(max_size=512), which=st.sampled_from(SECRETS))
def test_a_body_signed_with_any_configured_secret_is_accepted(body: bytes, which: str) -> None:
    assert signing_secret(body, sign(body, which), SECRETS) == which


@given(body=st.binary(max_size=512), other=st.binary(min_size=1, max_size=8))
def test_a_signature_of_another_body_is_a_mismatch(body: bytes, other: bytes) -> None:
    with pytest.raises(SignatureError) as raised:
        signing_secret(body + other, sign(body, SECRETS[0]), SECRETS)
    assert raised.value.failure is SignatureFailure.MISMATCH


@pytest.mark.parametrize(
    ("header", "failure"),
    [
        (None, SignatureFailure.MISSING),
        ("", SignatureFailure.MISSING),
        ("md5=00", SignatureFailure.MALFORMED),
        ("sha256=xyz", SignatureFailure.MALFORMED),
        ("sha256=abcd", SignatureFailure.MALFORMED),
        ("sha256=" + "ab" * 32, SignatureFailure.MISMATCH),
    ],
)
def test_missing_malformed_and_wrong_headers(header: str | None, failure: SignatureFailure) -> None:
    with pytest.raises(SignatureError) as raised:
        signing_secret(b"{}", header, SECRETS)
    assert raised.value.failure is failure


def test_no_configured_secret_accepts_nothing() -> None:
    with pytest.raises(SignatureError):
        signing_secret(b"{}", sign(b"{}", "any"), [])
