"""A number's WhatsApp business profile (what customers see when they tap its name) and
its picture: Meta's documented limits, checked before anything is sent, so that a
refusal names the field instead of coming back as Meta's code 100.

Limits (Cloud API business profile reference): about 1 to 139 characters, address up to
256, description up to 512, email up to 128 and an address, at most two websites of up
to 256 characters each with their http(s) scheme, vertical one of Meta's categories. A
picture is a JPEG or PNG of at most 5 MB and at least 192 x 192 pixels (Meta recommends
640 x 640 and crops it to a circle).
"""

import io
import re
import warnings
from collections.abc import Mapping
from typing import Final

import msgspec

ABOUT_MAX: Final = 139
ADDRESS_MAX: Final = 256
DESCRIPTION_MAX: Final = 512
EMAIL_MAX: Final = 128
WEBSITES_MAX: Final = 2
WEBSITE_MAX: Final = 256
PICTURE_MAX_BYTES: Final = 5 * 1024 * 1024
PICTURE_MIN_PX: Final = 192
# Meta's business categories, as the API names them.
VERTICALS: Final = (
    "UNDEFINED",
    "OTHER",
    "AUTO",
    "BEAUTY",
    "APPAREL",
    "EDU",
    "ENTERTAIN",
    "EVENT_PLAN",
    "FINANCE",
    "GROCERY",
    "GOVT",
    "HOTEL",
    "HEALTH",
    "NONPROFIT",
    "PROF_SERVICES",
    "RETAIL",
    "TRAVEL",
    "RESTAURANT",
    "ALCOHOL",
    "ONLINE_GAMBLING",
    "PHYSICAL_GAMBLING",
    "OTC_DRUGS",
)
PICTURE_TYPES: Final = {"JPEG": "image/jpeg", "PNG": "image/png"}
# Deliberately loose: one "@", something on each side, a dot in the domain. Meta checks
# deliverability no further, and a stricter rule refuses real addresses.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


class BusinessProfile(msgspec.Struct, frozen=True, kw_only=True):
    """The profile as Meta gives it; a field Meta has nothing for is None."""

    about: str | None = None
    address: str | None = None
    description: str | None = None
    email: str | None = None
    websites: list[str] = []
    vertical: str | None = None
    profile_picture_url: str | None = None


class ProfileError(ValueError):
    """A change Meta would refuse: `field` names what, the message why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_change(change: Mapping[str, object]) -> dict[str, object]:
    """The fields of a profile change as Meta takes them (strings trimmed), or
    ProfileError naming the first field that does not fit. Only the fields given
    change; an empty string clears address, description, email (Meta: "" removes it),
    an empty list the websites. `about` cannot be cleared (Meta: it cannot be empty)."""
    if not change:
        raise ProfileError("profile", "name at least one field to change")
    checked: dict[str, object] = {}
    for field, value in change.items():
        if field == "websites":
            checked[field] = _websites(value)
        elif field == "vertical":
            if value not in VERTICALS:
                raise ProfileError(field, f"must be one of {', '.join(VERTICALS)}")
            checked[field] = value
        elif field in _TEXT_LIMITS:
            checked[field] = _text(field, value)
        else:
            raise ProfileError(field, "is not a business profile field")
    return checked


_TEXT_LIMITS: Final = {
    "about": (1, ABOUT_MAX),
    "address": (0, ADDRESS_MAX),
    "description": (0, DESCRIPTION_MAX),
    "email": (0, EMAIL_MAX),
}


def _text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise ProfileError(field, "must be a string")
    text = value.strip()
    low, high = _TEXT_LIMITS[field]
    if not low <= len(text) <= high:
        raise ProfileError(field, f"must be {low} to {high} characters, got {len(text)}")
    if field == "email" and text and not _EMAIL.fullmatch(text):
        raise ProfileError(field, "must be an email address like help@example.com")
    return text


def _websites(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(site, str) for site in value):
        raise ProfileError("websites", "must be a list of URLs")
    sites = [site.strip() for site in value]
    if len(sites) > WEBSITES_MAX:
        raise ProfileError("websites", f"at most {WEBSITES_MAX} websites, got {len(sites)}")
    for index, site in enumerate(sites):
        if not site.startswith(("http://", "https://")) or len(site) > WEBSITE_MAX:
            raise ProfileError(
                f"websites[{index}]",
                f"must start with http:// or https:// and be at most {WEBSITE_MAX} characters",
            )
    return sites


class Picture(msgspec.Struct, frozen=True):
    mime_type: str
    width: int
    height: int


def check_picture(data: bytes) -> Picture:
    """What the file is, if Meta would take it as a profile picture; ProfileError
    (field "picture") naming why not. The bytes are decoded, not just sniffed: a file
    that merely starts like a PNG is refused here rather than by Meta."""
    # Here, not at the top: the engine and the receiver import this module through the
    # Graph client, and only an admin's upload needs Pillow (20 ms of start-up).
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ProfileError("picture", "the file is empty")
    if len(data) > PICTURE_MAX_BYTES:
        raise ProfileError("picture", f"must be at most {PICTURE_MAX_BYTES} bytes")
    try:
        with warnings.catch_warnings():
            # A decompression-bomb warning is an answer here, not noise.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind, (width, height) = image.format, image.size
                image.verify()
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
        Warning,
    ):
        raise ProfileError("picture", "must be a JPEG or PNG image") from None
    if kind not in PICTURE_TYPES:
        raise ProfileError("picture", f"must be a JPEG or PNG image, got {kind}")
    if min(width, height) < PICTURE_MIN_PX:
        raise ProfileError(
            "picture",
            f"must be at least {PICTURE_MIN_PX} x {PICTURE_MIN_PX} pixels, got {width} x {height}",
        )
    return Picture(PICTURE_TYPES[kind], width, height)
