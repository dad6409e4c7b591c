"""The webhook receiver: verify Meta's calls, parse them, put their events on Kafka."""
