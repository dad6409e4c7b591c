"""Which customer an event is about, from the identifiers it carries. Pure.

Each channel keeps one alias hash (store/aliases.py) from every identifier of a customer
to the customer's id. The id is the routing
identifier the customer was first seen by (their BSUID, phone, or `g.<group id>`) and
never changes; it names the conversation's keys. A conversation written by release 0.1
has no aliases: its id is its phone, so an identifier that is itself an existing
customer's id names that customer (the "self" fallback), and its alias is written then.
docs/customers.md has the rules and why.
"""

from collections.abc import Mapping

from parley.events import Identity
from store.aliases import Candidate, Claim, candidates


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
