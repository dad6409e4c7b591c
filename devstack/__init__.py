"""Development tools, kept out of the runtime: local Kafka and Redis servers, `make run`'s
stack, `make demo`, the Graph API stand-in, signed sample webhooks.

Tests, benchmarks and local runs use it; the runtime packages (parley, ingest, engine,
assign, metrics) never import it, and the wheel and the image do not ship it.
"""
