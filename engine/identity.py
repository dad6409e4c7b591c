"""Which customer an event is about, from the identifiers it carries. Pure.

Each channel keeps one alias hash: `p:<phone>`, `u:<BSUID>`, `pu:<parent BSUID>`,
`g:<group id>` and `n:<username>` -> the customer's id. The id is the routing
identifier the customer was first seen by (their BSUID, phone, or `g.<group id>`) and
never changes; it names the conversation's keys. A conversation written by release 0.1
has no aliases: its id is its phone, so an identifier that is itself an existing
customer's id names that customer (the "self" fallback), and its alias is written then.
docs/customers.md has the rules and why.
"""

from collections.abc import Iterator, Mapping

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


def candidates(identity: Identity) -> Iterator[Candidate]:
    """The identifiers that can find a customer, in lookup order."""
    for field, prefix in _LOOKUP:
        value = getattr(identity, field)
        if value:
            itself = GROUP_PREFIX + value if field == "group_id" else value
            yield Candidate(prefix + value, itself)


class Aliases:
    """What the engine knows of a channel's alias hash during one batch: the stored
    values it read, whether each identifier is itself a customer's id, and the claims
    it planned (applied to what it knows, so later events in the batch see them)."""

    def __init__(self, stored: Mapping[str, str | None], existing: set[str]) -> None:
        self.stored = dict(stored)
        self.existing = set(existing)

    def find(self, identity: Identity) -> str | None:
        """The id of the customer `identity` names; None for a new customer."""
        for candidate in candidates(identity):
            found = self._names(candidate)
            if found is not None:
                return found
        return None

    def claims(self, customer: str, identity: Identity) -> list[Claim]:
        """What must change for every identifier in `identity` to name `customer`; the
        claims are applied to what this object knows."""
        claims = []
        for candidate in candidates(identity):
            stored = self.stored.get(candidate.alias)
            if stored == customer:
                continue
            claims.append(Claim(candidate.alias, stored or "", customer))
            self.stored[candidate.alias] = customer
        self.existing.add(customer)
        return claims

    def _names(self, candidate: Candidate) -> str | None:
        stored = self.stored.get(candidate.alias)
        if stored:
            return stored
        return candidate.itself if candidate.itself in self.existing else None
