import pytest

from pylotto.core import keys
from pylotto.core.errors import InvalidArgument


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("none", "k"), ("", "k"), ("appid", "app1||k"), ("AppId", "app1||k"),
     ("name", "store||k"), ("custom", "custom||k"),
     ("Custom", "custom||k")],  # lower-cased, as daprd and Layotto do
)
def test_prefix_strategies(strategy: str, expected: str) -> None:
    prefix = keys.key_prefix(strategy, app_id="app1", component="store")
    assert keys.prefixed(prefix, "k") == expected
    assert keys.original(expected) == "k"


def test_appid_strategy_without_app_id_keeps_plain_key() -> None:
    assert keys.prefixed(keys.key_prefix("appid", app_id="", component="s"), "k") == "k"


@pytest.mark.parametrize("bad", ["a||b", "||"])
def test_separator_refused_in_keys_and_prefixes(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="can't contain"):
        keys.prefixed("", bad)
    with pytest.raises(InvalidArgument, match="can't contain"):
        keys.key_prefix(bad, app_id="a", component="s")


@pytest.mark.parametrize(("namespace", "app_id", "expected"), [
    ("prod", "app1", "prod.app1||k"), ("", "app1", "app1||k"), ("prod", "", "k")])
def test_the_namespace_strategy_is_daprd_s(monkeypatch: pytest.MonkeyPatch, namespace: str,
                                          app_id: str, expected: str) -> None:
    monkeypatch.setenv("NAMESPACE", namespace)
    prefix = keys.key_prefix("namespace", app_id=app_id, component="s")
    assert keys.prefixed(prefix, "k") == expected
