import pytest

from pylotto.core import registry
from pylotto.core.errors import ConfigError


@pytest.mark.parametrize(
    ("capability", "name"),
    [("state", "in-memory"), ("state", "state.sqlite"), ("secretstores", "local.file"),
     ("secretstores", "secretstores.local.env"), ("pubsub", "pubsub.in-memory"),
     ("lock", "in-memory"), ("sequencer", "sqlite"), ("configuration", "in-memory"),
     ("file", "local"), ("bindings", "bindings.http"), ("hello", "helloworld")],
)
def test_short_and_dapr_names_resolve(capability: str, name: str) -> None:
    cls = registry.resolve(capability, name)
    assert cls.__module__.startswith(f"pylotto.components.{capability}.")


def test_typo_suggests_the_closest_type() -> None:
    with pytest.raises(ConfigError, match="did you mean 'sqlite'"):
        registry.resolve("state", "sqlit")


def test_every_alias_points_to_a_component() -> None:
    for capability in registry.CAPABILITIES:
        for name in registry.aliases(capability):
            type_name, _, version = name.partition("/")  # "postgresql/v2": a type's version
            registry.resolve(capability, type_name, version)
