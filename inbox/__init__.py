"""The agent inbox page (docs/inbox.md): static ES modules the receiver serves at `/`
and `/inbox/{file}`. The page is a client of the public /v1 API and its live stream
only, so this package imports nothing of Parley's."""
