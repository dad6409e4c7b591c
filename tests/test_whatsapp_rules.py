"""WhatsApp's rules as Parley checks them (parley/whatsapp.py), against Meta's as the Graph
stand-in plays them (devstack/graph_standin.py), and the one-line previews
(store/writes.py), under hypothesis.

The API refuses a reply when `template_problems` or `interactive_problems` name a
problem, and otherwise the sender builds the message with the same module's builders.
So for any reply: what the API lets through, Meta must take (else the agent learns of
the refusal only after moving on); and a template's variables that Meta would take, the
API must not refuse.
"""

import string
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from devstack import graph_standin
from devstack.graph_standin import StoredMedia
from parley import whatsapp
from parley.events import Attachment, Card, Choice, Interactive, Place, Section, TemplateParameters
from store.writes import PREVIEW_MAX, LogLine, MediaLine, preview

MEDIA_MIME = {"image": "image/png", "video": "video/mp4", "document": "application/pdf"}
HEADER_MEDIA_ID = "1000000000000001"


def uploaded(kind: str) -> dict[str, StoredMedia]:
    """The stand-in's media: the header's file, uploaded as a file of `kind`'s type."""
    mime_type = MEDIA_MIME.get(kind, "audio/mpeg")
    return {HEADER_MEDIA_ID: StoredMedia(HEADER_MEDIA_ID, mime_type, "0" * 64, 10, b"x" * 10)}


# Templates

# Short values: a body filled in past 1,024 characters is another rule (132005).
VALUE = st.text(alphabet="ab #1 ", min_size=1, max_size=8)

HEADERS = st.sampled_from(
    [
        None,
        {"type": "HEADER", "format": "TEXT", "text": "Order update"},
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {"type": "HEADER", "format": "IMAGE"},
        {"type": "HEADER", "format": "VIDEO"},
        {"type": "HEADER", "format": "DOCUMENT"},
    ]
)
BUTTONS = st.lists(
    st.sampled_from(
        [
            {"type": "QUICK_REPLY", "text": "Thanks"},
            {"type": "URL", "text": "Shop", "url": "https://shop.example.com"},
            {"type": "URL", "text": "Track", "url": "https://shop.example.com/track/{{1}}"},
            {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+31201234567"},
        ]
    ),
    max_size=3,
)


@st.composite
def templates(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A template's components as the business account lists them: a header (text, with
    or without a variable, or a file), a body with 0 to 4 variables, maybe a footer and
    buttons."""
    components: list[dict[str, Any]] = []
    header = draw(HEADERS)
    if header is not None:
        components.append(header)
    count = draw(st.integers(0, 4))
    body = " ".join(["Hello"] + [f"{{{{{n}}}}}" for n in range(1, count + 1)])
    components.append({"type": "BODY", "text": body})
    if draw(st.booleans()):
        components.append({"type": "FOOTER", "text": "Parley Shop"})
    buttons = draw(BUTTONS)
    if buttons:
        components.append({"type": "BUTTONS", "buttons": buttons})
    return components


def fitting(components: list[dict[str, Any]]) -> TemplateParameters:
    """The variables that fit the template, as an agent would give them."""
    header_text, header_media = None, None
    for wanted in whatsapp.template_variables(components):
        if wanted == "header_text":
            header_text = "1013"
        elif wanted.startswith("header_media:"):
            kind = wanted.partition(":")[2]
            header_media = Attachment(key="k" * 64, kind=kind, mime_type=MEDIA_MIME[kind])
    body_count = next(
        (
            int(w.partition(":")[2])
            for w in whatsapp.template_variables(components)
            if w.startswith("body:")
        ),
        0,
    )
    buttons = {
        int(w.partition(":")[2]): "1013"
        for w in whatsapp.template_variables(components)
        if w.startswith("button:")
    }
    return TemplateParameters(
        header_text=header_text,
        header_media=header_media,
        body=[f"value {n}" for n in range(body_count)],
        buttons=buttons,
    )


@st.composite
def parameters(draw: st.DrawFn, components: list[dict[str, Any]]) -> TemplateParameters:
    """Variables for the template: the fitting set, or one changed in any way an agent's
    request could change it (within the API's schema)."""
    given = fitting(components)
    change = draw(
        st.sampled_from(
            ["none", "header_text", "header_media", "body", "body_value", "buttons", "any"]
        )
    )
    if change == "header_text":
        given = _replace(given, header_text=draw(st.none() | VALUE))
    elif change == "header_media":
        kind = draw(st.none() | st.sampled_from(["image", "video", "document", "audio"]))
        media = None if kind is None else Attachment(key="k" * 64, kind=kind, mime_type="x/y")
        given = _replace(given, header_media=media)
    elif change == "body":
        given = _replace(given, body=draw(st.lists(VALUE, max_size=5)))
    elif change == "body_value" and given.body:
        index = draw(st.integers(0, len(given.body) - 1))
        body = list(given.body)
        body[index] = draw(VALUE)
        given = _replace(given, body=body)
    elif change == "buttons":
        given = _replace(given, buttons=draw(st.dictionaries(st.integers(0, 3), VALUE, max_size=3)))
    elif change == "any":
        kind = draw(st.none() | st.sampled_from(["image", "video", "document"]))
        given = TemplateParameters(
            header_text=draw(st.none() | VALUE),
            header_media=None
            if kind is None
            else Attachment(key="k" * 64, kind=kind, mime_type=MEDIA_MIME[kind]),
            body=draw(st.lists(VALUE, max_size=5)),
            buttons=draw(st.dictionaries(st.integers(0, 3), VALUE, max_size=3)),
        )
    return given


def _replace(given: TemplateParameters, **changes: Any) -> TemplateParameters:
    fields = {name: getattr(given, name) for name in TemplateParameters.__struct_fields__}
    return TemplateParameters(**{**fields, **changes})


def meta_refuses_template(
    components: list[dict[str, Any]], given: TemplateParameters
) -> tuple[int, str] | None:
    """What the stand-in answers to the message the sender would build: None when taken."""
    header = given.header_media
    message = whatsapp.template_message(
        "order_update",
        "en_US",
        given,
        header_media_id=HEADER_MEDIA_ID if header is not None else None,
    )
    known = [graph_standin.Template("order_update", "en_US", components)]
    media = uploaded(header.kind if header is not None else "image")
    refusal = graph_standin._template_problem(message["template"], media, known)
    return None if refusal is None else (refusal.code, refusal.details)


@given(data=st.data())
def test_a_template_reply_the_api_lets_through_is_one_meta_takes_and_vice_versa(
    data: st.DataObject,
) -> None:
    components = data.draw(templates(), label="components")
    given = data.draw(parameters(components), label="parameters")
    problems = list(whatsapp.template_problems(components, given))
    refused = meta_refuses_template(components, given)
    if not problems:
        assert refused is None, f"the API lets through what Meta refuses: {refused}"
    # Both a header text and a header file: the message carries the text only, so Meta
    # may take what the API rightly refuses (the agent's file would not be sent).
    elif not (given.header_text and given.header_media):
        assert refused is not None, f"the API refuses what Meta takes: {problems}"
    for field, problem in problems:  # each names a field of the API's request
        assert field.split(".")[0] == "parameters" and problem, (field, problem)


@given(components=templates())
def test_the_variables_a_template_lists_are_the_ones_that_fit_it(
    components: list[dict[str, Any]],
) -> None:
    assert list(whatsapp.template_problems(components, fitting(components))) == []
    assert meta_refuses_template(components, fitting(components)) is None


IMAGE_HEADER = {"type": "HEADER", "format": "IMAGE"}
TEXT_HEADER = {"type": "HEADER", "format": "TEXT", "text": "Order update"}
VARIABLE_HEADER = {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"}
URL_BUTTON = {
    "type": "BUTTONS",
    "buttons": [{"type": "URL", "text": "Track", "url": "https://shop.example.com/t/{{1}}"}],
}
PHOTO = Attachment(key="k" * 64, kind="image", mime_type="image/png")


@pytest.mark.parametrize(
    ("components", "given", "field"),
    [
        (  # the sender would send the text and drop the file
            [IMAGE_HEADER],
            TemplateParameters(header_text="1013", header_media=PHOTO),
            "parameters.header_text",
        ),
        ([TEXT_HEADER], TemplateParameters(header_media=PHOTO), "parameters.header_media"),
        ([VARIABLE_HEADER], TemplateParameters(header_text=" "), "parameters.header_text"),
        ([URL_BUTTON], TemplateParameters(buttons={0: " "}), "parameters.buttons.0"),
    ],
    ids=["text-for-an-image-header", "a-file-for-a-text-header", "blank-header", "blank-url"],
)
def test_a_header_or_button_value_meta_would_refuse_is_refused(
    components: list[dict[str, Any]], given: TemplateParameters, field: str
) -> None:
    components = [*components, {"type": "BODY", "text": "Hello"}]
    assert [f for f, _ in whatsapp.template_problems(components, given)] == [field]
    assert meta_refuses_template(components, given) is not None


# Reply buttons and lists

TEXT = st.text(alphabet=string.ascii_lowercase[:3] + " ✓", min_size=1, max_size=6)


def long_text(limit: int) -> st.SearchStrategy[str]:
    """Short text, or text around `limit` characters."""
    return TEXT | st.integers(limit - 2, limit + 2).map(lambda size: "x" * size)


# Within the API's schema (api/schemas.py ChoiceBody, SectionBody, InteractiveBody).
CHOICES = st.builds(
    Choice,
    id=TEXT | long_text(200) | long_text(256).filter(lambda text: len(text) <= 256),
    title=long_text(20) | long_text(24),
    description=st.none() | long_text(72),
)
SECTIONS = st.lists(
    st.builds(Section, title=st.none() | long_text(24), rows=st.lists(CHOICES, max_size=4)),
    min_size=1,
    max_size=4,
)


@st.composite
def interactives(draw: st.DrawFn) -> Interactive:
    body = draw(TEXT | long_text(1024))
    header = draw(st.none() | TEXT)
    footer = draw(st.none() | TEXT)
    if draw(st.booleans()):
        return Interactive(
            body=body,
            buttons=draw(st.lists(CHOICES, min_size=1, max_size=4)),
            header=header,
            footer=footer,
        )
    return Interactive(
        body=body,
        button=draw(TEXT | long_text(20)),
        sections=draw(SECTIONS),
        header=header,
        footer=footer,
    )


@given(interactive=interactives())
@example(
    Interactive(
        body="Pick",
        buttons=[Choice(id="a", title="Same"), Choice(id="b", title="Same")],
    )
).via("duplicate titles")
@example(
    Interactive(
        body="Pick",
        button="Sizes",
        sections=[
            Section(rows=[Choice(id="s", title="S")]),
            Section(rows=[Choice(id="m", title="M")]),
        ],
    )
).via("untitled sections")
@example(
    Interactive(
        body="Pick",
        button="Sizes",
        sections=[
            Section(title="A", rows=[]),
            Section(title="B", rows=[Choice(id="m", title="M")]),
        ],
    )
).via("an empty section")
@example(
    Interactive(
        body="Pick", button="Sizes", sections=[Section(rows=[Choice(id="r" * 201, title="M")])]
    )
).via("a row id longer than 200")
def test_choices_the_api_lets_through_are_ones_meta_takes(interactive: Interactive) -> None:
    problems = list(whatsapp.interactive_problems(interactive))
    message = whatsapp.interactive_message(interactive)["interactive"]
    refused = graph_standin._interactive_problem(message, {})
    if not problems:
        assert refused is None, f"the API lets through what Meta refuses: {refused}"
    for field, problem in problems:
        assert field.startswith("interactive") and problem


# Previews

MEDIA_KINDS = ["image", "video", "audio", "document", "sticker"]
LABELS = {
    "image": "Photo",
    "video": "Video",
    "audio": "Audio",
    "document": "Document",
    "sticker": "Sticker",
}
ANY_TEXT = st.none() | st.text(max_size=300)


@st.composite
def log_lines(draw: st.DrawFn) -> LogLine:
    """A log line of any kind: text, a file (with a caption or a filename), a place,
    contact cards, choices or a template."""
    what = draw(st.sampled_from(["text", "media", "place", "cards", "interactive", "template"]))
    fields: dict[str, Any] = {"text": draw(ANY_TEXT)}
    if what == "media":
        kind = draw(st.sampled_from(MEDIA_KINDS))
        fields["media"] = MediaLine(
            kind=kind,
            filename=draw(st.none() | st.text(min_size=1, max_size=300)),
            voice=kind == "audio" and draw(st.booleans()),
        )
        fields["type"] = kind
    elif what == "place":
        fields["place"] = Place(
            name=draw(st.none() | st.text(max_size=150)),
            address=draw(st.none() | st.text(max_size=150)),
        )
    elif what == "cards":
        cards = st.builds(
            Card,
            name=st.none() | st.text(max_size=80),
            phones=st.lists(st.text(min_size=1, max_size=15), max_size=2),
        )
        fields["cards"] = draw(st.lists(cards, min_size=1, max_size=4))
    elif what == "interactive":
        fields["interactive"] = draw(interactives())
    elif what == "template":
        fields["template"] = draw(st.text(alphabet="abc_", min_size=1, max_size=300))
    return LogLine(
        id="wamid.x",
        direction="inbound",
        type=fields.pop(
            "type", draw(st.sampled_from(["text", "location", "contacts", "unsupported"]))
        ),
        at=0.0,
        **fields,
    )


def phrase(line: LogLine) -> str:
    """The preview as store/writes.py documents it, before any cut: "<label>: <what>" for
    what is not plain text (the label alone when there is nothing more to say), plain text
    as it is, and the message's type when it has nothing to show."""
    text = (line.text or "").strip()
    if line.media is not None:
        label = "Voice message" if line.media.voice else LABELS[line.media.kind]
        said = text or (line.media.filename or "")
    elif line.place is not None:
        label, said = "Location", ", ".join(p for p in (line.place.name, line.place.address) if p)
    elif line.cards:
        label = "Contact" if len(line.cards) == 1 else "Contacts"
        said = ", ".join(c.name or (c.phones[0] if c.phones else "?") for c in line.cards)
    elif line.interactive is not None:
        label, said = ("List" if line.interactive.sections else "Buttons"), text
    elif line.template:
        label, said = "Template", line.template
    else:
        return text or line.type
    return f"{label}: {said}" if said else label


@given(line=log_lines())
def test_a_preview_is_one_bounded_phrase_that_says_what_the_message_is(line: LogLine) -> None:
    shown, whole = preview(line), phrase(line)
    if len(whole) <= PREVIEW_MAX:
        assert shown == whole
    else:  # cut, and said to be
        assert shown == whole[: PREVIEW_MAX - 1] + "…"
    assert shown or not line.type  # never blank for a message of a type
