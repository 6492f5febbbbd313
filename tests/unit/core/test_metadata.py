import logging

import pytest
from pydantic import Field

from pylotto.core.errors import ConfigError
from pylotto.core.metadata import ComponentSettings, decode


class Settings(ComponentSettings):
    host: str = Field("localhost", alias="redisHost")
    max_retries: int = Field(3, alias="maxRetries")
    enable_tls: bool = Field(False, alias="enableTLS")


def test_strings_become_typed_values_case_insensitively() -> None:
    got = decode(Settings, {"redishost": "h", "maxRetries": "7", "EnableTLS": "true"},
                 component="state.r")
    assert (got.host, got.max_retries, got.enable_tls) == ("h", 7, True)


def test_bad_value_names_component_key_and_expectation() -> None:
    with pytest.raises(ConfigError) as info:
        decode(Settings, {"maxRetries": "many"}, component="state.r")
    assert "state.r" in info.value.message
    assert "maxRetries" in info.value.message
    assert "integer" in info.value.message


def test_unknown_key_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pylotto.metadata"):
        decode(Settings, {"colour": "blue"}, component="state.r")
    assert "state.r" in caplog.text and "colour" in caplog.text


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("connectionString", "user:s3cret@tcp(db:3306)/shop", "user:***@tcp(db:3306)/shop"),
    ("connectionString", "postgres://app:s3cret@db/shop", "postgres://app:***@db/shop"),
    ("connectionString", "host=db password=s3cret user=app", "host=db password=*** user=app"),
    ("redisPassword", "s3cret", "***"),
    ("redisHost", "db:6379", "db:6379"),
])
def test_errors_never_show_secrets(key: str, value: str, shown: str) -> None:
    from pylotto.core.metadata import masked

    assert masked(key, value) == shown
