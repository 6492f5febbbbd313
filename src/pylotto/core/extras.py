"""Which pip extra (``pip install 'pylotto[redis]'``) brings the drivers a component needs.

Drivers are imported lazily (only the selected components load them), so a missing one would
otherwise show as ``No module named 'hiredis'`` from deep inside a component, or — for a
driver imported only when the component connects — as a traceback at start after
``check-config`` passed. :func:`missing` is asked when a component type is resolved (so
``check-config`` refuses a partial install too) and :func:`named` turns any ImportError of a
driver into the extra to install.

``EXTRAS`` mirrors ``[project.optional-dependencies]`` of pyproject.toml, by the names the
drivers are imported as (a unit test keeps the two in step); ``COMPONENT_EXTRAS`` says which
extra a component module (``pylotto.components.<capability>.<product>``) needs, by the
module's last name.
"""

from __future__ import annotations

import importlib.util

EXTRAS: dict[str, tuple[str, ...]] = {
    "redis": ("redis", "hiredis"),
    "postgresql": ("asyncpg",),
    "mysql": ("aiomysql", "pymysql"),
    "etcd": (),  # pylotto's own etcd protos over grpcio, a core dependency: nothing to add
    "zookeeper": ("aiozk",),
    "memcached": ("aiomcache",),
    "rabbitmq": ("aio_pika",),
    "mqtt": ("aiomqtt",),
    "nats": ("nats",),
    "smtp": ("aiosmtplib",),
    "s3": ("aiobotocore",),
    "wasm": ("wasmtime",),
    "h2c": ("httpx", "h2"),
}
"""extra → the top-level modules its distributions install."""

COMPONENT_EXTRAS: dict[str, str] = {
    "redis": "redis", "redis_cluster": "redis",
    "postgresql": "postgresql", "postgresql_v2": "postgresql",
    "mysql": "mysql",
    "zookeeper": "zookeeper",
    "memcached": "memcached",
    "rabbitmq": "rabbitmq",
    "mqtt": "mqtt", "mqtt3": "mqtt",
    "nats": "nats",
    "smtp": "smtp",
    "s3": "s3",
}
"""A component module's last name → the extra it needs (modules not listed need none)."""


def install_hint(extra: str) -> str:
    return f"pip install 'pylotto[{extra}]'"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(component_module: str) -> str | None:
    """What is missing for the component in ``component_module`` (a message ending with the
    pip command), or None when its drivers are all installed."""
    extra = COMPONENT_EXTRAS.get(component_module.rpartition(".")[2])
    if extra is None:
        return None
    absent = [module for module in EXTRAS[extra] if not _importable(module)]
    if not absent:
        return None
    return (f"its driver is not installed (no module {', '.join(map(repr, absent))}): "
            f"{install_hint(extra)}")


def extra_of_module(module: str) -> str | None:
    """The extra installing the top-level module of ``module`` (``redis.asyncio`` → redis)."""
    top = module.partition(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)


def named(exc: ImportError) -> str:
    """``exc`` said as what to install, when it is a driver of an extra; else its text."""
    extra = extra_of_module(exc.name or "")
    if extra is None:
        return str(exc)
    return f"its driver is not installed (no module {exc.name!r}): {install_hint(extra)}"
