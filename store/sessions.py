"""Browser sessions of the inbox page (docs/inbox.md): a random id in an HttpOnly cookie,
kept here by its SHA-256 only, so a copy of Redis signs nobody in."""

import hashlib
import secrets

import msgspec

from parley.redis import RedisClient
from store import _keys as keys

# How long a session lasts from sign-in; signing in again starts a new one.
SESSION_TTL_S = 12 * 3600


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """Whose it is, and the token a state-changing request must echo (CSRF)."""

    user: str
    csrf: str
    created_at: float
    # The SHA-256 of the token it was opened with: a session lives only while that token
    # does (rotating or deleting a user, or changing the bootstrap admin's, ends it).
    token_digest: str


_decoder = msgspec.json.Decoder(Session)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    """Raises redis errors."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client

    async def create(self, user: str, now: float, *, token_digest: str) -> tuple[str, Session]:
        """A new session of `user`: its id (for the cookie, never stored) and itself."""
        session_id = secrets.token_urlsafe(32)
        session = Session(
            user=user, csrf=secrets.token_urlsafe(32), created_at=now, token_digest=token_digest
        )
        await self._client.set(
            keys.session(_digest(session_id)), msgspec.json.encode(session), ex=SESSION_TTL_S
        )
        return session_id, session

    async def get(self, session_id: str) -> Session | None:
        raw = await self._client.get(keys.session(_digest(session_id)))
        return None if raw is None else _decoder.decode(raw)

    async def delete(self, session_id: str) -> None:
        await self._client.delete(keys.session(_digest(session_id)))
