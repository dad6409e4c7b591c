"""WhatsApp's customer-service window: free-form messages may be sent only within 24
hours of the customer's last message; outside it, only approved templates. Pure."""

WINDOW_S = 24 * 3600


def is_open(last_customer_at: float | None, now: float) -> bool:
    """True up to and including 24 hours after the customer's last message."""
    return last_customer_at is not None and now - last_customer_at <= WINDOW_S
