"""A decoded webhook call turned into conversation events: pure, no I/O, no clock.

Every item (a message, a status, an echo, a preference, a user-id update) is read on
its own. One that cannot be used becomes an `Unusable` with its reason, and the rest of
the call goes on: a customer Meta no longer gives a phone number for must not cost the
messages batched with theirs.
"""

import math
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import msgspec

from ingest.meta_payload import (
    Contact,
    MediaObject,
    MessageEcho,
    MessageItem,
    Metadata,
    StatusItem,
    TemplateCategory,
    TemplateStatus,
    UserIdUpdate,
    UserPreference,
    Webhook,
    decode_value,
)
from parley.events import (
    Card,
    CustomerMessage,
    Echo,
    Edit,
    Event,
    Identity,
    IdentityChange,
    Media,
    MessageStatus,
    Payload,
    Place,
    Preference,
    Reaction,
    Revoke,
    routing_id,
)
from parley.meta_text import message_text, status_error
from parley.standing import NameUpdate, QualityUpdate
from store.templates import TemplateUpdate

MESSAGES = "messages"
ECHOES = "smb_message_echoes"
PREFERENCES = "user_preferences"
USER_ID_UPDATE = "user_id_update"
TEMPLATE_STATUS = "message_template_status_update"
TEMPLATE_CATEGORY = "template_category_update"
NAME_UPDATE = "phone_number_name_update"
QUALITY_UPDATE = "phone_number_quality_update"
_NUMBER_UPDATES: dict[str, type[NameUpdate] | type[QualityUpdate]] = {
    NAME_UPDATE: NameUpdate,
    QUALITY_UPDATE: QualityUpdate,
}
# The array of items each field carries, and how one item becomes an event.
ITEMS = {
    MESSAGES: ("messages", "statuses"),
    ECHOES: ("message_echoes",),
    PREFERENCES: ("user_preferences",),
    USER_ID_UPDATE: ("user_id_update",),
}

# Why an item was not used (bounded: these label a metric).
UNREADABLE_VALUE = "unreadable_value"
NO_PHONE_NUMBER_ID = "no_phone_number_id"
UNREADABLE_ITEM = "unreadable_item"
NO_CUSTOMER_IDENTIFIER = "no_customer_identifier"

# "User Sheena Nelson changed from US.134... to US.705...": the only place Meta names
# the old BSUID of a user_changed_user_id message.
_BSUID_CHANGE = re.compile(r"changed from (\S+) to (\S+)\s*$")


class Unusable(msgspec.Struct, frozen=True, kw_only=True):
    """An item that became no event, with why; `item` is as Meta sent it."""

    reason: str
    field: str
    item: Any
    channel: str | None = None
    detail: str | None = None


class Batch(msgspec.Struct, frozen=True):
    """What one call carried. `events` holds one event per usable item, in payload
    order; `unusable` the items that could not be used. `other_fields` names every
    change Parley does not read (to count), and `value_errors` the codes of errors Meta
    reported for a whole value (to count)."""

    events: list[Event]
    unusable: list[Unusable]
    other_fields: list[str]
    value_errors: list[int]
    template_updates: list[TemplateUpdate] = msgspec.field(default_factory=list)
    # A number's display name review and quality (parley/standing.py).
    number_updates: list[NameUpdate | QualityUpdate] = msgspec.field(default_factory=list)


class _Skip(Exception):
    """This item becomes no event, for `reason`."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        self.reason = reason
        self.detail = detail


def normalize(webhook: Webhook, received_at: float) -> Batch:
    """Never raises for a `Webhook` that `decode_webhook` returned; `received_at` is the
    time Parley took the call, and stands in for timestamps that are not a time."""
    batch = Batch(events=[], unusable=[], other_fields=[], value_errors=[])
    for entry in webhook.entry:
        for change in entry.changes:
            if change.field in (TEMPLATE_STATUS, TEMPLATE_CATEGORY):
                update = _template_update(entry.id, change.field, change.value)
                if update is not None:
                    batch.template_updates.append(update)
                    continue
            if change.field in _NUMBER_UPDATES:
                number = _number_update(change.field, change.value)
                if number is not None:
                    batch.number_updates.append(number)
                    continue
            if change.field not in ITEMS:
                batch.other_fields.append(change.field)
                continue
            _read_value(batch, change.field, change.value, received_at)
    return batch


def _read_value(batch: Batch, field: str, raw: msgspec.Raw, received_at: float) -> None:
    problem: str | None = None
    try:
        value = decode_value(raw)
    except msgspec.DecodeError as error:
        value, problem = None, str(error)
    if problem is None and not isinstance(value, dict):
        problem = "the value is not a JSON object"
    if problem is not None:
        # Kept as sent (text, when it is not even JSON) so that it can be re-driven.
        item = value if value is not None else bytes(raw).decode(errors="replace")
        batch.unusable.append(
            Unusable(reason=UNREADABLE_VALUE, field=field, item=item, detail=problem)
        )
        return
    try:
        channel: str | None = msgspec.convert(value.get("metadata"), Metadata).phone_number_id
    except msgspec.ValidationError:
        channel = None
    for code in _error_codes(value.get("errors")):
        batch.value_errors.append(code)
    reader = _Reader(channel, _contacts(value.get("contacts")), received_at)
    for array in ITEMS[field]:
        items = value.get(array, [])
        if not isinstance(items, list):
            batch.unusable.append(
                Unusable(reason=UNREADABLE_VALUE, field=field, item=items, channel=channel,
                         detail=f"{array} is not an array")
            )  # fmt: skip
            continue
        for item in items:
            try:
                if channel is None:
                    raise _Skip(NO_PHONE_NUMBER_ID, "metadata.phone_number_id is missing")
                batch.events.append(reader.read(array, item))
            except _Skip as skip:
                batch.unusable.append(
                    Unusable(reason=skip.reason, field=field, item=item, channel=channel,
                             detail=skip.detail)
                )  # fmt: skip


class _Reader:
    """Turns one item of a value into its event; raises _Skip."""

    def __init__(self, channel: str | None, contacts: list[Contact], received_at: float) -> None:
        self.channel = channel or ""
        self.contacts = contacts
        self.received_at = received_at

    def read(self, array: str, item: Any) -> Event:
        # Looked up on the class: a dict of this instance's bound methods would be a
        # reference cycle per webhook, freed only by the collector (docs/profiles/receiver.md).
        return _READERS[array](self, item)

    def _message(self, item: Any) -> Event:
        message = _typed(item, MessageItem)
        person = self._named(
            Identity(
                phone=message.from_,
                user_id=message.from_user_id,
                parent_user_id=message.from_parent_user_id,
            ),
            sender=True,
        )
        identity, author = person, None
        if message.group_id:
            identity, author = Identity(group_id=message.group_id), person
        payload: Payload
        if message.type == "reaction" and message.reaction is not None:
            payload = Reaction(
                wamid=message.id, target=message.reaction.message_id, emoji=message.reaction.emoji
            )
        elif message.type == "edit" and message.edit is not None:
            new = message.edit.message or {}
            text = message_text(str(new.get("type", "")), new)
            payload = Edit(wamid=message.id, target=message.edit.original_message_id, text=text)
        elif message.type == "revoke" and message.revoke is not None:
            payload = Revoke(wamid=message.id, target=message.revoke.original_message_id)
        elif message.type == "system" and message.system is not None:
            identity, payload = _identity_change(identity, message)
        else:
            payload = CustomerMessage(
                wamid=message.id,
                type=message.type,
                author=author,
                text=message_text(message.type, item),
                context_wamid=message.context.id if message.context else None,
                forwarded=bool(
                    message.context
                    and (message.context.forwarded or message.context.frequently_forwarded)
                ),
                shared_phone=_shared_phone(item) if message.type == "contacts" else None,
                media=_media(message),
                place=_place(message),
                cards=_cards(item) if message.type == "contacts" else [],
            )
        return self._event(message.id, identity, message.timestamp, payload)

    def _status(self, item: Any) -> Event:
        status = _typed(item, StatusItem)
        participant = None
        if status.recipient_type == "group":
            identity = Identity(group_id=status.recipient_id)
            participant = self._named(
                Identity(
                    phone=status.recipient_participant_id,
                    user_id=status.recipient_participant_user_id,
                )
            )
        else:
            identity = self._named(
                Identity(
                    phone=status.recipient_id,
                    user_id=status.recipient_user_id,
                    parent_user_id=status.recipient_parent_user_id,
                )
            )
        event_id = f"{status.id}:{status.status}"
        if participant is not None:
            # One status per member: two members' reads are two events, not a duplicate.
            event_id += f":{routing_id(participant) or ''}"
        payload = MessageStatus(
            wamid=status.id,
            status=status.status,
            participant=participant,
            error=status_error(status.errors),
            pricing_category=status.pricing.category if status.pricing else None,
            pricing_type=status.pricing.type if status.pricing else None,
            callback_data=status.biz_opaque_callback_data,
        )
        return self._event(event_id, identity, status.timestamp, payload)

    def _echo(self, item: Any) -> Event:
        echo = _typed(item, MessageEcho)
        identity = self._named(
            Identity(phone=echo.to, user_id=echo.to_user_id, parent_user_id=echo.to_parent_user_id)
        )
        payload = Echo(wamid=echo.id, type=echo.type, text=message_text(echo.type, item))
        return self._event(echo.id, identity, echo.timestamp, payload)

    def _preference(self, item: Any) -> Event:
        preference = _typed(item, UserPreference)
        identity = self._named(
            Identity(
                phone=preference.wa_id,
                user_id=preference.user_id,
                parent_user_id=preference.parent_user_id,
            )
        )
        payload = Preference(category=preference.category, value=preference.value)
        event_id = f"preference:{routing_id(identity)}:{preference.category}:{preference.timestamp}"
        return self._event(event_id, identity, preference.timestamp, payload)

    def _user_id_update(self, item: Any) -> Event:
        update = _typed(item, UserIdUpdate)
        parent = update.parent_user_id
        previous = Identity(
            phone=update.wa_id,
            user_id=update.user_id.previous,
            parent_user_id=parent.previous if parent else None,
        )
        new = Identity(
            user_id=update.user_id.current, parent_user_id=parent.current if parent else None
        )
        payload = IdentityChange(new=new, reason=USER_ID_UPDATE, text=update.detail)
        event_id = f"{USER_ID_UPDATE}:{update.user_id.previous}:{update.user_id.current}"
        return self._event(event_id, previous, update.timestamp, payload)

    def _event(
        self, event_id: str, identity: Identity, timestamp: object, payload: Payload
    ) -> Event:
        identity = _present(identity)
        if routing_id(identity) is None:
            raise _Skip(NO_CUSTOMER_IDENTIFIER, "no phone, user id or group id")
        return Event(
            id=event_id,
            channel=self.channel,
            identity=identity,
            occurred_at=_seconds(timestamp, self.received_at),
            received_at=self.received_at,
            payload=payload,
        )

    def _named(self, identity: Identity, *, sender: bool = False) -> Identity:
        """`identity` with the profile name and username of its contact. Meta sends one
        contact per person; for the sender of a message its `wa_id` may be spelled
        differently from `from` (e.g. a country's mobile prefix), so a lone contact names
        the sender unless its BSUID says otherwise. Among several, or for a status (whose
        value may describe other recipients), only a match names anyone."""
        identity = _present(identity)
        contact = next(
            (
                contact
                for contact in self.contacts
                if (identity.user_id and contact.user_id == identity.user_id)
                or (identity.phone and contact.wa_id == identity.phone)
            ),
            None,
        )
        if contact is None and len(self.contacts) == 1:
            lone = self.contacts[0]
            if _may_be(lone, identity, spelled_apart=sender):
                contact = lone
        if contact is None or contact.profile is None:
            return identity
        return msgspec.structs.replace(
            identity, name=contact.profile.name or None, username=contact.profile.username or None
        )


def _may_be(contact: Contact, identity: Identity, *, spelled_apart: bool) -> bool:
    """Whether a lone contact can be this person: its BSUID is not another's, and (unless
    phones may be spelled apart) neither is its phone."""
    if contact.user_id and identity.user_id:
        return contact.user_id == identity.user_id
    if spelled_apart:
        return True
    return not (contact.wa_id and identity.phone and contact.wa_id != identity.phone)


def _present(identity: Identity) -> Identity:
    """`identity` with empty strings taken as absent: "" identifies nobody."""
    if "" not in msgspec.structs.astuple(identity):
        return identity  # the usual case, at a tuple's cost rather than a dict's
    empty = {field: None for field in Identity.__struct_fields__ if getattr(identity, field) == ""}
    return msgspec.structs.replace(identity, **empty) if empty else identity


def _identity_change(identity: Identity, message: MessageItem) -> tuple[Identity, Payload]:
    """A system message: a changed number or BSUID. It finds the customer by their old
    identifiers: the sender's, or (user_changed_user_id names no sender) the old BSUID
    in its body."""
    system = message.system
    assert system is not None
    kind = system.type or "system"
    if routing_id(identity) is None and (found := _BSUID_CHANGE.search(system.body or "")):
        identity = Identity(user_id=found.group(1))
    new = Identity(
        phone=system.wa_id or system.new_wa_id,
        user_id=system.user_id,
        parent_user_id=system.parent_user_id,
    )
    return identity, IdentityChange(new=new, reason=kind, text=system.body)


def _shared_phone(item: dict[str, Any]) -> str | None:
    """The phone a customer shared answering a contact request: only a card with
    `origin: contact_request` proves the number is the sender's own."""
    for card in _list(item.get("contacts")):
        if isinstance(card, dict) and card.get("origin") == "contact_request":
            for phone in _list(card.get("phones")):
                if isinstance(phone, dict) and isinstance(phone.get("wa_id"), str):
                    return str(phone["wa_id"]) or None
    return None


MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")


def _media(message: MessageItem) -> Media | None:
    found = getattr(message, message.type, None) if message.type in MEDIA_KINDS else None
    if not isinstance(found, MediaObject):
        return None
    return Media(
        id=found.id,
        mime_type=found.mime_type,
        sha256=found.sha256,
        filename=found.filename,
        voice=bool(found.voice),
    )


def _place(message: MessageItem) -> Place | None:
    place = message.location
    if message.type != "location" or place is None:
        return None
    return Place(
        latitude=place.latitude, longitude=place.longitude, name=place.name, address=place.address
    )


def _cards(item: dict[str, Any]) -> list[Card]:
    """The contact cards shared: each one's formatted name and numbers."""
    cards = []
    for card in _list(item.get("contacts")):
        if not isinstance(card, dict):
            continue
        name = card.get("name")
        formatted = name.get("formatted_name") if isinstance(name, dict) else None
        phones = [
            str(phone.get("phone") or phone.get("wa_id"))
            for phone in _list(card.get("phones"))
            if isinstance(phone, dict) and (phone.get("phone") or phone.get("wa_id"))
        ]
        cards.append(Card(name=formatted if isinstance(formatted, str) else None, phones=phones))
    return cards


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


T = TypeVar("T")


def _typed(item: Any, kind: type[T]) -> T:
    try:
        return msgspec.convert(item, kind)
    except msgspec.ValidationError as error:
        raise _Skip(UNREADABLE_ITEM, str(error)) from None


def _contacts(raw: Any) -> list[Contact]:
    """The value's contacts; one that cannot be read names nobody."""
    if not isinstance(raw, list):
        return []
    contacts = []
    for item in raw:
        try:
            contacts.append(msgspec.convert(item, Contact))
        except msgspec.ValidationError:
            continue
    return contacts


def _error_codes(raw: Any) -> Iterator[int]:
    for error in raw if isinstance(raw, list) else []:
        if isinstance(error, dict) and isinstance(error.get("code"), int):
            yield int(error["code"])


def _template_update(waba: str | None, field: str, raw: msgspec.Raw) -> TemplateUpdate | None:
    """A template's new status or category, for the business account `waba`; None when
    it is not that shape."""
    try:
        value = decode_value(raw)
        if field == TEMPLATE_STATUS:
            status = msgspec.convert(value, TemplateStatus)
            return TemplateUpdate(
                waba_id=waba,
                name=status.message_template_name,
                language=status.message_template_language,
                status=status.event,
                reason=status.reason if status.reason not in (None, "NONE") else None,
                category=status.message_template_category,
            )
        category = msgspec.convert(value, TemplateCategory)
        if category.previous_category is None:
            # Only announced (in 24 hours): `new_category` is still the current one.
            return None
        return TemplateUpdate(
            waba_id=waba,
            name=category.message_template_name,
            language=category.message_template_language,
            category=category.new_category,
        )
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _number_update(field: str, raw: msgspec.Raw) -> NameUpdate | QualityUpdate | None:
    """A number's name review or quality change; None when it is not that shape (it
    is then counted as a change Parley does not read)."""
    try:
        return msgspec.convert(decode_value(raw), _NUMBER_UPDATES[field])
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _seconds(timestamp: object, fallback: float) -> float:
    """Unix seconds from Meta's timestamp. Anything that is not a finite number falls
    back, since a NaN or infinity would encode as JSON null and break every reader."""
    if not isinstance(timestamp, str | int | float):
        return fallback
    try:
        seconds = float(timestamp)
    except (ValueError, OverflowError):
        return fallback
    return seconds if math.isfinite(seconds) else fallback


# Each array of a webhook value and the reader of its items.
_READERS: dict[str, Callable[[_Reader, Any], Event]] = {
    "messages": _Reader._message,
    "statuses": _Reader._status,
    "message_echoes": _Reader._echo,
    "user_preferences": _Reader._preference,
    "user_id_update": _Reader._user_id_update,
}
