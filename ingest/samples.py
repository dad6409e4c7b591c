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
    phone_number_id: str, wa_id: str, wamid: str, text: str, timestamp: int, name: str = "Sheena"
) -> dict[str, Any]:
    """A customer's text message, as in Meta's "text messages" webhook example."""
    return webhook(
        phone_number_id,
        {
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": wamid,
                    "timestamp": str(timestamp),
                    "type": "text",
                    "text": {"body": text},
                }
            ],
        },
    )


def status(
    phone_number_id: str, recipient_id: str, wamid: str, state: str, timestamp: int
) -> dict[str, Any]:
    """A delivery status (sent, delivered, read) of a message we sent."""
    return webhook(
        phone_number_id,
        {
            "statuses": [
                {
                    "id": wamid,
                    "status": state,
                    "timestamp": str(timestamp),
                    "recipient_id": recipient_id,
                    "conversation": {
                        "id": "CONVERSATION_ID",
                        "origin": {"type": "service"},
                    },
                    "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"},
                }
            ]
        },
    )
