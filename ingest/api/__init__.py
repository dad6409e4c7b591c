"""The /v1 API for agents and admins, on the receiver's app."""
