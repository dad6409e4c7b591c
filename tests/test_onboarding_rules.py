"""The pure rules of onboarding: a business profile change and picture against Meta's
limits, a template written in Parley against Meta's template rules (and the components
it becomes), and a number's standing as Graph reads and webhooks move it."""

import re
import string

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parley.business_profile import (
    ABOUT_MAX,
    PICTURE_MIN_PX,
    VERTICALS,
    ProfileError,
    check_change,
    check_picture,
)
from parley.standing import (
    NameUpdate,
    NumberFields,
    QualityUpdate,
    Standing,
    after_name_update,
    after_quality_update,
    digits,
    from_graph,
    problems,
)
from parley.template_submission import (
    Body,
    Button,
    Header,
    Submission,
    SubmissionError,
    check,
    components,
    request,
)
from parley.whatsapp import template_variables
from tests.image_tools import picture

T0 = 1_790_000_000.0
LIMITS = {"about": (1, 139), "address": (0, 256), "description": (0, 512), "email": (0, 128)}


# --- The business profile -------------------------------------------------------------


def refusal(change: dict[str, object]) -> str:
    with pytest.raises(ProfileError) as caught:
        check_change(change)
    return caught.value.field


@given(
    field=st.sampled_from(sorted(LIMITS)),
    text=st.text(alphabet=string.ascii_letters + " é", max_size=600),
)
def test_a_text_field_is_taken_exactly_within_its_limits(field: str, text: str) -> None:
    low, high = LIMITS[field]
    value = f"a@b.co{text}".replace(" ", "") if field == "email" else text
    fits = low <= len(value.strip()) <= high
    if fits:
        assert check_change({field: value}) == {field: value.strip()}
    else:
        assert refusal({field: value}) == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({}, "profile"),
        ({"about": ""}, "about"),
        ({"about": "x" * (ABOUT_MAX + 1)}, "about"),
        ({"about": 7}, "about"),
        ({"email": "not an address"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"websites": ["https://a.example", "https://b.example", "https://c.example"]}, "websites"),
        ({"websites": ["ftp://a.example"]}, "websites[0]"),
        ({"websites": ["https://a.example", "a.example"]}, "websites[1]"),
        ({"websites": ["https://" + "a" * 250]}, "websites[0]"),
        ({"websites": "https://a.example"}, "websites"),
        ({"vertical": "SPACESHIPS"}, "vertical"),
        ({"about": "fine", "vertical": "NOPE"}, "vertical"),
        ({"logo": "x"}, "logo"),
    ],
)
def test_each_refused_shape_names_its_field(change: dict[str, object], field: str) -> None:
    assert refusal(change) == field


def test_every_field_at_once_and_clearing() -> None:
    change = {
        "about": " Plants, delivered ",
        "address": "1 Hacker Way, Menlo Park",
        "description": "We deliver succulents.",
        "email": "help@luckyshrub.example",
        "websites": ["https://luckyshrub.example", "http://shop.luckyshrub.example"],
        "vertical": "RETAIL",
    }
    assert check_change(change) == {**change, "about": "Plants, delivered"}
    assert check_change({"address": "", "websites": []}) == {"address": "", "websites": []}
    assert all(check_change({"vertical": v}) == {"vertical": v} for v in VERTICALS)


@given(
    kind=st.sampled_from(["JPEG", "PNG", "GIF", "BMP", "WEBP"]),
    width=st.integers(150, 260),
    height=st.integers(150, 260),
)
def test_a_picture_is_taken_only_as_a_big_enough_jpeg_or_png(
    kind: str, width: int, height: int
) -> None:
    data = picture(kind, width, height)
    if kind in ("JPEG", "PNG") and min(width, height) >= PICTURE_MIN_PX:
        checked = check_picture(data)
        assert (checked.mime_type, checked.width, checked.height) == (
            f"image/{kind.lower()}",
            width,
            height,
        )
    else:
        with pytest.raises(ProfileError, match=r"JPEG or PNG|pixels") as caught:
            check_picture(data)
        assert caught.value.field == "picture"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, b"\xff\xd8\xff" + b"junk" * 10, b"hello"],
    ids=["empty", "png-magic-only", "jpeg-magic-only", "text"],
)
def test_a_file_that_only_looks_like_a_picture_is_refused(data: bytes) -> None:
    with pytest.raises(ProfileError):
        check_picture(data)


# --- Templates written in Parley --------------------------------------------------------


def submission(**changes: object) -> Submission:
    base = Submission(
        name="order_update",
        language="en_US",
        category="UTILITY",
        body=Body(text="Hi {{1}}, order {{2}} ships today.", examples=["Ana", "4411"]),
    )
    return msgspec.structs.replace(base, **changes)


def submission_refusal(candidate: Submission) -> str:
    with pytest.raises(SubmissionError) as caught:
        check(candidate)
    return caught.value.field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"body": Body(text="")}, "body.text"),
        ({"body": Body(text="x" * 1025)}, "body.text"),
        ({"body": Body(text="Hi {{1}} and {{3}}", examples=["a", "b"])}, "body.text"),
        ({"body": Body(text="Hi {{name}}", examples=["a"])}, "body.text"),
        ({"body": Body(text="Hi {{1}}")}, "body.examples"),
        ({"body": Body(text="Hi", examples=["extra"])}, "body.examples"),
        ({"header": Header(text="x" * 61)}, "header.text"),
        ({"header": Header(text="{{1}} and {{2}}", example="a")}, "header.text"),
        ({"header": Header(text="Order {{1}}")}, "header.example"),
        ({"header": Header(text="Order", example="4411")}, "header.example"),
        ({"footer": "x" * 61}, "footer"),
        ({"footer": "Reply {{1}}"}, "footer"),
        ({"buttons": [Button(type="QUICK_REPLY", text="Yes")] * 11}, "buttons"),
        ({"buttons": [Button(type="QUICK_REPLY", text="x" * 26)]}, "buttons[0].text"),
        ({"buttons": [Button(type="URL", text="Go", url="shop.example")]}, "buttons[0].url"),
        (
            {"buttons": [Button(type="URL", text="Go", url="https://s.example/{{1}}/x")]},
            "buttons[0].url",
        ),
        (
            {"buttons": [Button(type="URL", text="Go", url="https://s.example/{{1}}")]},
            "buttons[0].example",
        ),
        (
            {"buttons": [Button(type="URL", text="Go", url="https://s.example", example="x")]},
            "buttons[0].example",
        ),
        ({"buttons": [Button(type="URL", text="Go", url="https://s.example")] * 3}, "buttons"),
        ({"buttons": [Button(type="PHONE_NUMBER", text="Call")]}, "buttons[0].phone_number"),
        (
            {"buttons": [Button(type="PHONE_NUMBER", text="Call", phone_number="+15550100")] * 2},
            "buttons",
        ),
    ],
)
def test_each_broken_rule_names_its_part(changes: dict[str, object], field: str) -> None:
    assert submission_refusal(submission(**changes)) == field


@given(count=st.integers(0, 6), prefix=st.text(alphabet="abc ", max_size=20))
def test_a_checked_template_becomes_components_whose_variables_a_send_needs(
    count: int, prefix: str
) -> None:
    text = prefix + "!" + "".join(f" {{{{{n}}}}}" for n in range(1, count + 1))
    candidate = submission(
        body=Body(text=text, examples=[f"v{n}" for n in range(count)]),
        header=Header(text="Order {{1}}", example="4411"),
        footer="Lucky Shrub",
        buttons=[
            Button(type="URL", text="Track", url="https://s.example/t/{{1}}",
                   example="https://s.example/t/4411"),
            Button(type="PHONE_NUMBER", text="Call", phone_number="+1 555 0100"),
            Button(type="QUICK_REPLY", text="Thanks"),
        ],
    )  # fmt: skip
    check(candidate)
    made = components(candidate)
    assert [part["type"] for part in made] == ["HEADER", "BODY", "FOOTER", "BUTTONS"]
    body = made[1]
    assert body.get("example", {"body_text": [[]]})["body_text"] == [
        [f"v{n}" for n in range(count)]
    ]
    wanted = ["header_text"] + ([f"body:{count}"] if count else []) + ["button:0"]
    assert template_variables(made) == wanted
    sent = request(candidate)
    assert (sent["name"], sent["language"], sent["category"]) == (
        "order_update",
        "en_US",
        "UTILITY",
    )


def test_names_languages_and_categories_are_refused_by_shape() -> None:
    base = msgspec.to_builtins(submission())
    for field, value in [
        ("name", "Order Update"),
        ("language", "english"),
        ("category", "AUTHENTICATION"),
    ]:
        with pytest.raises(msgspec.ValidationError, match=re.escape(f"$.{field}")):
            msgspec.convert({**base, field: value}, Submission)


# --- A number's standing ---------------------------------------------------------------


def test_a_read_gives_the_review_under_way_and_keeps_a_declines_reason() -> None:
    fields = NumberFields(
        verified_name="Lucky Shrub",
        display_phone_number="+1 555-012-3456",
        name_status="APPROVED",
        new_name_status="PENDING_REVIEW",
        quality_rating="GREEN",
        messaging_limit_tier="TIER_1K",
        is_official_business_account=False,
        official_business_account={"oba_status": "PENDING"},
    )
    read = from_graph(fields, T0)
    assert (read.name_status, read.oba_status, read.refreshed_at) == (
        "PENDING_REVIEW",
        "PENDING",
        T0,
    )
    declined = Standing(name_status="DECLINED", name_rejection_reason="Not your brand")
    again = from_graph(msgspec.structs.replace(fields, new_name_status="DECLINED"), T0, declined)
    assert again.name_rejection_reason == "Not your brand"
    assert problems(again) == ["name_declined"]


@given(
    decision=st.sampled_from(["APPROVED", "REJECTED", "DEFERRED", "PENDING"]),
    reason=st.sampled_from([None, "NONE", "The name does not match the business"]),
)
def test_a_name_decision_moves_the_review(decision: str, reason: str | None) -> None:
    before = Standing(verified_name="Old Name", name_status="PENDING_REVIEW")
    update = NameUpdate(
        display_phone_number="15550123456",
        decision=decision,
        requested_verified_name="Lucky Shrub",
        rejection_reason=reason,
    )
    after = after_name_update(before, update, T0)
    expected = {"APPROVED": "APPROVED", "REJECTED": "DECLINED"}.get(decision, "PENDING_REVIEW")
    assert after.name_status == expected
    assert after.verified_name == ("Lucky Shrub" if decision == "APPROVED" else "Old Name")
    declined_with_reason = decision == "REJECTED" and reason not in (None, "NONE")
    assert after.name_rejection_reason == (reason if declined_with_reason else None)
    assert ("name_declined" in problems(after)) == (decision == "REJECTED")


@pytest.mark.parametrize(
    ("event", "rating"),
    [("FLAGGED", "RED"), ("UNFLAGGED", None), ("UPGRADE", "GREEN"), ("ONBOARDING", "GREEN")],
)
def test_a_quality_event_moves_the_rating_and_the_limit(event: str, rating: str | None) -> None:
    before = Standing(quality_rating="GREEN", messaging_limit="TIER_1K")
    update = QualityUpdate(
        display_phone_number="15550123456",
        event=event,
        current_limit="TIER_2K",
        max_daily_conversations_per_business="TIER_10K",
    )
    after = after_quality_update(before, update, T0)
    # The new field wins over the one Meta is removing.
    assert (after.quality_rating, after.messaging_limit) == (rating, "TIER_10K")
    assert ("quality_red" in problems(after)) == (rating == "RED")


@given(st.text(alphabet="0123456789 +-()", max_size=30))
def test_a_display_number_is_its_digits(phone: str) -> None:
    assert digits(phone) == re.sub(r"\D", "", phone)
