"""A message template written in Parley and submitted to the business account for
Meta's review: the shape an admin fills in (header, body, footer, buttons, each
variable with its example), Meta's rules checked before anything is sent, and the
`components` Meta's `POST /{waba-id}/message_templates` takes.

Meta's rules (message templates reference): a body of 1 to 1,024 characters whose
variables are {{1}}..{{n}} in order, each with an example; a text header of up to 60
characters with at most one variable; a footer of up to 60 without variables; at most
10 buttons: quick replies, at most 2 URL buttons (a variable only at the URL's end,
with an example URL) and 1 phone number, each label up to 25 characters.

Decisions: headers are text only (a media header needs a sample file uploaded to Meta
first; such templates are made in WhatsApp Manager and synced), and authentication
templates are made in WhatsApp Manager too (Meta writes their body).
"""

import re
from typing import Annotated, Any, Final, Literal

import msgspec

BODY_MAX: Final = 1024
HEADER_MAX: Final = 60
FOOTER_MAX: Final = 60
BUTTONS_MAX: Final = 10
BUTTON_TEXT_MAX: Final = 25
URL_BUTTONS_MAX: Final = 2
PHONE_BUTTONS_MAX: Final = 1
URL_MAX: Final = 2000
EXAMPLE_MAX: Final = 200
_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{3,19}")

TemplateName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{1,512}$")]
TemplateLanguage = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")]
Example = Annotated[str, msgspec.Meta(min_length=1, max_length=EXAMPLE_MAX)]


class Header(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    text: str
    example: Example | None = None  # what {{1}} stands for, when the text has it


class Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    text: str
    examples: list[Example] = []  # one per variable, in order


class Button(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: Literal["QUICK_REPLY", "URL", "PHONE_NUMBER"]
    text: str
    url: str | None = None  # URL buttons; may end in {{1}}
    example: Example | None = None  # the URL with {{1}} filled in
    phone_number: str | None = None  # PHONE_NUMBER buttons


class Submission(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: TemplateName
    language: TemplateLanguage
    category: Literal["MARKETING", "UTILITY"]
    body: Body
    header: Header | None = None
    footer: str | None = None
    buttons: list[Button] = []
    # Meta may file it under another category than asked rather than reject it.
    allow_category_change: bool = True


class SubmissionError(ValueError):
    """A template Meta would refuse: `field` names where, the message why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check(submission: Submission) -> None:
    """SubmissionError naming the first part that breaks Meta's rules."""
    _check_body(submission.body)
    if submission.header is not None:
        _check_header(submission.header)
    if submission.footer is not None:
        _check_length("footer", submission.footer, FOOTER_MAX)
        if _VARIABLE.search(submission.footer):
            raise SubmissionError("footer", "a footer cannot have variables")
    _check_buttons(submission.buttons)


def _check_length(field: str, text: str, limit: int) -> None:
    if not text.strip() or len(text) > limit:
        raise SubmissionError(field, f"must be 1 to {limit} characters, got {len(text)}")


def _numbers(field: str, text: str) -> list[int]:
    """The variables' numbers in order of appearance; they must be 1..n."""
    found = _VARIABLE.findall(text)
    if not all(name.isdigit() for name in found):
        raise SubmissionError(field, "variables are numbered: {{1}}, {{2}}, ...")
    numbers = [int(name) for name in found]
    if sorted(set(numbers)) != list(range(1, len(set(numbers)) + 1)):
        raise SubmissionError(field, "variables must be {{1}} to {{n}} without gaps")
    return numbers


def _check_body(body: Body) -> None:
    _check_length("body.text", body.text, BODY_MAX)
    count = len(set(_numbers("body.text", body.text)))
    if len(body.examples) != count:
        raise SubmissionError(
            "body.examples", f"give one example per variable: {count}, got {len(body.examples)}"
        )


def _check_header(header: Header) -> None:
    _check_length("header.text", header.text, HEADER_MAX)
    numbers = _numbers("header.text", header.text)
    if len(numbers) > 1:
        raise SubmissionError("header.text", "a header has at most one variable, {{1}}")
    if numbers and header.example is None:
        raise SubmissionError("header.example", "give an example for {{1}}")
    if not numbers and header.example is not None:
        raise SubmissionError("header.example", "the header has no variable to exemplify")


def _check_buttons(buttons: list[Button]) -> None:
    if len(buttons) > BUTTONS_MAX:
        raise SubmissionError("buttons", f"at most {BUTTONS_MAX} buttons, got {len(buttons)}")
    kinds = [button.type for button in buttons]
    if kinds.count("URL") > URL_BUTTONS_MAX:
        raise SubmissionError("buttons", f"at most {URL_BUTTONS_MAX} URL buttons")
    if kinds.count("PHONE_NUMBER") > PHONE_BUTTONS_MAX:
        raise SubmissionError("buttons", f"at most {PHONE_BUTTONS_MAX} phone number button")
    for index, button in enumerate(buttons):
        where = f"buttons[{index}]"
        _check_length(f"{where}.text", button.text, BUTTON_TEXT_MAX)
        if button.type == "URL":
            _check_url_button(where, button)
        elif button.type == "PHONE_NUMBER" and not _PHONE.fullmatch(button.phone_number or ""):
            raise SubmissionError(f"{where}.phone_number", "a phone number like +15550100")


def _check_url_button(where: str, button: Button) -> None:
    url = button.url or ""
    if not url.startswith(("http://", "https://")) or len(url) > URL_MAX:
        raise SubmissionError(f"{where}.url", f"an http(s) URL of at most {URL_MAX} characters")
    variables = list(_VARIABLE.finditer(url))
    if not variables:
        if button.example is not None:
            raise SubmissionError(f"{where}.example", "the URL has no variable to exemplify")
        return
    if len(variables) > 1 or variables[0].group(1) != "1" or variables[0].end() != len(url):
        raise SubmissionError(f"{where}.url", "a URL may end in one variable, {{1}}")
    if button.example is None or not button.example.startswith(("http://", "https://")):
        raise SubmissionError(f"{where}.example", "give the URL with {{1}} filled in")


def components(submission: Submission) -> list[dict[str, Any]]:
    """The template's components as Meta takes (and later lists) them."""
    found: list[dict[str, Any]] = []
    header = submission.header
    if header is not None:
        part: dict[str, Any] = {"type": "HEADER", "format": "TEXT", "text": header.text}
        if header.example is not None:
            part["example"] = {"header_text": [header.example]}
        found.append(part)
    body: dict[str, Any] = {"type": "BODY", "text": submission.body.text}
    if submission.body.examples:
        body["example"] = {"body_text": [list(submission.body.examples)]}
    found.append(body)
    if submission.footer is not None:
        found.append({"type": "FOOTER", "text": submission.footer})
    if submission.buttons:
        found.append({"type": "BUTTONS", "buttons": [_button(b) for b in submission.buttons]})
    return found


def _button(button: Button) -> dict[str, Any]:
    out: dict[str, Any] = {"type": button.type, "text": button.text}
    if button.type == "URL":
        out["url"] = button.url
        if button.example is not None:
            out["example"] = [button.example]
    elif button.type == "PHONE_NUMBER":
        out["phone_number"] = button.phone_number
    return out


def request(submission: Submission) -> dict[str, Any]:
    """The body of `POST /{waba-id}/message_templates`."""
    return {
        "name": submission.name,
        "language": submission.language,
        "category": submission.category,
        "allow_category_change": submission.allow_category_change,
        "components": components(submission),
    }
