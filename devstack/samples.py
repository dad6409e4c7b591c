"""Meta-shaped webhook bodies, for tests, the demo and the benchmarks."""

from typing import Any

WABA_ID = "102290129340398"


def webhook(phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
    """A `messages` webhook call for one number carrying `value`."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": phone_number_id,
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def text_message(
    phone_number_id: str,
    wa_id: str | None,
    wamid: str,
    text: str,
    timestamp: int,
    name: str = "Sheena",
    *,
    user_id: str | None = None,
    username: str | None = None,
) -> dict[str, Any]:
    """A customer's text message, as in Meta's "text messages" webhook example: by
    phone (`wa_id`), BSUID (`user_id`) or both, as 2026 webhooks carry them."""
    profile = {"name": name, **({"username": username} if username else {})}
    message = {"id": wamid, "timestamp": str(timestamp), "type": "text", "text": {"body": text}}
    return webhook(
        phone_number_id,
        {
            "contacts": [{"profile": profile, **_who("wa_id", wa_id, "user_id", user_id)}],
            "messages": [{**_who("from", wa_id, "from_user_id", user_id), **message}],
        },
    )


def status(
    phone_number_id: str,
    recipient_id: str | None,
    wamid: str,
    state: str,
    timestamp: int,
    *,
    user_id: str | None = None,
) -> dict[str, Any]:
    """A delivery status (sent, delivered, read, played, failed) of a message we sent,
    to a phone (`recipient_id`), a BSUID (`user_id`) or both."""
    return webhook(
        phone_number_id,
        {
            "statuses": [
                {
                    "id": wamid,
                    "status": state,
                    "timestamp": str(timestamp),
                    **_who("recipient_id", recipient_id, "recipient_user_id", user_id),
                    "pricing": {
                        "billable": False,
                        "pricing_model": "PMP",
                        "type": "free_customer_service",
                        "category": "service",
                    },
                }
            ]
        },
    )


def _who(
    phone_field: str, phone: str | None, user_field: str, user_id: str | None
) -> dict[str, str]:
    found = {phone_field: phone, user_field: user_id}
    return {field: value for field, value in found.items() if value is not None}
