"""The conversation engine: applies conversation events from Kafka to Redis."""
