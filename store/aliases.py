"""The alias hash's fields: how each identifier of a customer is kept (docs/customers.md).

One hash per channel maps `g:<group id>`, `u:<BSUID>`, `p:<phone>`, `pu:<parent BSUID>`
and `n:<username>` to the customer's id. The engine reads and claims aliases through
these names (engine/identity.py decides which); nothing else spells them.
"""

import functools

import msgspec

from parley.events import GROUP_PREFIX, Identity

# Looked up in this order: the first that names a customer decides. The BSUID first: it
# is on nearly every event, and when a phone someone shares was already another
# customer's, the customer writing is the one their BSUID names.
_LOOKUP = (("group_id", "g:"), ("user_id", "u:"), ("phone", "p:"), ("parent_user_id", "pu:"))
USERNAME = "n:"


class Candidate(msgspec.Struct, frozen=True, array_like=True):
    """An identifier to look up: its alias field, and the id it would be as itself."""

    alias: str
    itself: str


class Claim(msgspec.Struct, frozen=True, array_like=True):
    """Point `alias` at `customer`, if it still holds `expected` ("": nothing)."""

    alias: str
    expected: str
    customer: str


@functools.lru_cache(maxsize=65_536)
def candidates(identity: Identity) -> tuple[Candidate, ...]:
    """The identifiers that can find a customer, in lookup order. Cached: an event's
    identity is looked at four times on its way through the engine (the read, the
    lookup, the claims, its told identity)."""
    found = []
    for field, prefix in _LOOKUP:
        value = getattr(identity, field)
        if value:
            itself = GROUP_PREFIX + value if field == "group_id" else value
            found.append(Candidate(prefix + value, itself))
    return tuple(found)
