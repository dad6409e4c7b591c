"""Settings from the environment, the channels file, and durations."""

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from parley.channels import ChannelFileError, load_channels, parse_channels
from parley.durations import DurationError, format_period, parse_period
from parley.kafka import cached_partitioner
from parley.settings import SettingsError, settings_from_env

GOOD = {
    "id": "106540352242922",
    "app_secret": "super-secret-value",
    "verify_token": "verify-me",
    "access_token": "EAAG-token",
    "display_name": "Support EU",
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("off", None), (" OFF ", None)],
)
def test_periods_parse(text: str, seconds: int | None) -> None:
    assert parse_period(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "0s", "-5m", "1.5h", "30 days", "1w", "12hh"])
def test_bad_periods_are_refused(text: str) -> None:
    with pytest.raises(DurationError):
        parse_period(text)


@given(st.one_of(st.none(), st.integers(min_value=1, max_value=10**9)))
def test_format_is_the_inverse_of_parse(seconds: int | None) -> None:
    assert parse_period(format_period(seconds)) == seconds


def test_settings_defaults_follow_the_design() -> None:
    settings = settings_from_env({})
    assert settings.topic == "parley.events"
    assert (settings.http_host, settings.http_port, settings.metrics_port) == (
        "127.0.0.1",
        8080,
        9108,
    )
    assert settings.graph_url == "https://graph.facebook.com/v21.0"
    assert settings.kafka_bootstrap is None and settings.redis_url is None


def test_settings_convert_strings_and_ignore_other_variables() -> None:
    settings = settings_from_env(
        {"PARLEY_HTTP_PORT": "9000", "PARLEY_KAFKA_IDEMPOTENCE": "true", "HOME": "/root"}
    )
    assert settings.http_port == 9000
    assert settings.kafka_idempotence is True


def test_a_bad_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="PARLEY_HTTP_PORT"):
        settings_from_env({"PARLEY_HTTP_PORT": "eighty"})


def test_the_admin_token_never_shows_in_the_repr() -> None:
    settings = settings_from_env({"PARLEY_ADMIN_TOKEN": "tok-123456"})
    assert "tok-123456" not in repr(settings)


def test_a_channel_gets_the_documented_defaults() -> None:
    [channel] = parse_channels({"channels": [GOOD]})
    assert channel.settings.auto_assign is True
    assert channel.settings.auto_resolve_new_s == 30 * 86400
    assert channel.settings.auto_resolve_pending_s == 30 * 86400
    assert "super-secret-value" not in repr(channel)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"display_name": ""}, "display_name"),
        ({"display_name": "x" * 256}, "display_name"),
        ({"auto_resolve_new": "soon"}, "auto_resolve_new"),
        ({"auto_resolve_pending": "0d"}, "auto_resolve_pending"),
        ({"auto_assign": "yes"}, "auto_assign"),
        ({"id": "not-a-number"}, "id"),
        ({"app_secret": 42}, "app_secret"),
        ({"waba_id": "12ab"}, "waba_id"),
        ({"waba_id": ""}, "waba_id"),
        ({"waba_id": "1" * 33}, "waba_id"),
        ({"waba_id": "102290129340398\n"}, "waba_id"),
        ({"waba_id": 102290129340398}, "waba_id"),
    ],
)
def test_a_bad_channel_names_the_channel_and_the_field(
    change: dict[str, object], field: str
) -> None:
    with pytest.raises(ChannelFileError) as raised:
        parse_channels({"channels": [{**GOOD, **change}]})
    message = str(raised.value)
    assert field in message
    assert "channel" in message
    assert "super-secret-value" not in message


def test_a_channel_names_its_business_account_or_none() -> None:
    [channel] = parse_channels({"channels": [GOOD]})
    assert channel.settings.waba_id is None
    [channel] = parse_channels({"channels": [{**GOOD, "waba_id": "102290129340398"}]})
    assert channel.settings.waba_id == "102290129340398"
    [channel] = parse_channels({"channels": [{**GOOD, "waba_id": "1" * 32}]})
    assert channel.settings.waba_id == "1" * 32


def test_a_bad_business_account_names_the_channel_and_the_field() -> None:
    with pytest.raises(ChannelFileError, match=r"^channel 106540352242922: waba_id: "):
        parse_channels({"channels": [{**GOOD, "waba_id": "12ab"}]})


def test_a_missing_field_is_named() -> None:
    entry = {key: value for key, value in GOOD.items() if key != "verify_token"}
    with pytest.raises(ChannelFileError, match="channel 106540352242922: verify_token"):
        parse_channels({"channels": [entry]})


def test_display_names_in_any_script_are_trimmed() -> None:
    [channel] = parse_channels({"channels": [{**GOOD, "display_name": "  Поддержка 支持 ☎  "}]})
    assert channel.settings.display_name == "Поддержка 支持 ☎"


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ChannelFileError, match="more than once"):
        parse_channels({"channels": [GOOD, GOOD]})


def test_the_file_is_read_and_bad_toml_is_reported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "channels.toml"
    good.write_text(
        '[[channels]]\nid = "1"\napp_secret = "a"\nverify_token = "v"\naccess_token = "t"\n'
        'display_name = "One"\nauto_resolve_new = "off"\nwaba_id = "102290129340398"\n'
    )
    [channel] = load_channels(str(good))
    assert channel.settings.auto_resolve_new_s is None
    assert channel.settings.waba_id == "102290129340398"
    bad = tmp_path / "bad.toml"
    bad.write_text("[[channels]\n")
    with pytest.raises(ChannelFileError, match="not valid TOML"):
        load_channels(str(bad))
    with pytest.raises(ChannelFileError, match="cannot read"):
        load_channels(str(tmp_path / "missing.toml"))


@given(
    key=st.one_of(st.none(), st.binary(max_size=40)),
    partitions=st.integers(1, 64),
)
def test_the_cached_partitioner_picks_what_kafkas_default_picks(
    key: bytes | None, partitions: int
) -> None:
    every = list(range(partitions))
    chosen = cached_partitioner(key, every, every)
    if key is None:
        assert chosen in every  # random, as aiokafka's
    else:
        assert chosen == DefaultPartitioner()(key, every, every)
        assert cached_partitioner(key, every, every) == chosen
