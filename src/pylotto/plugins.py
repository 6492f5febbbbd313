"""API plugins: third-party packages that add gRPC services (and HTTP routes) to the sidecar.

A package declares its plugin in the entry point group ``pylotto.apis``::

    [project.entry-points."pylotto.apis"]
    counter = "my_package.counter:CounterPlugin"

The object named there is an :class:`ApiPlugin` subclass (or any callable taking a
:class:`PluginContext` and returning an ``ApiPlugin``). ``pip install`` the package and the
next ``pylotto run`` serves it: no change to pylotto, no configuration.

What a plugin gets is :class:`PluginContext` — the stable surface: the capability objects
(``state``, ``pubsub``, ``lock``, ``sequencer``, ``configuration``, ``secrets``, ``file``,
``bindings``, ``invoke``), the app's settings, the data folder and a logger. Handlers call the
capabilities exactly as the built-in APIs do, so key prefixing, resiliency and feature checks
apply; a :class:`pylotto.core.errors.PylottoError` raised by a gRPC handler becomes the same status
code the built-in APIs return (and, for HTTP routes on the Dapr HTTP listener, the same HTTP
status). Its gRPC services are served on every gRPC port with the built-in ones (same API
token, TLS, metrics) and are listed by server reflection and the health service.

A plugin that cannot be imported or built stops start-up with a :class:`ConfigError` naming
it (``pylotto run`` exits with code 2). ``pylotto plugins`` lists what is installed; a running
sidecar reports its loaded plugins in the Dapr metadata API's ``extended`` map under
``pylotto.plugins``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from aiohttp import web

from pylotto.capabilities.services import CapabilityServices
from pylotto.core.errors import ConfigError

if TYPE_CHECKING:
    from pylotto.capabilities.status import RuntimeStatus
    from pylotto.config.model import AppConfig

ENTRY_POINT_GROUP = "pylotto.apis"
EXTENDED_METADATA_KEY = "pylotto.plugins"
"""Key of the Dapr metadata ``extended`` map listing the loaded plugins (comma-separated)."""


@dataclass(frozen=True, slots=True)
class PluginContext(CapabilityServices):
    """What an API plugin may use: the sidecar's capability services record (``state``,
    ``pubsub``, ``lock``, ``sequencer``, ``configuration``, ``secrets``, ``file``, ``bindings``,
    ``invoke``... — the same objects the built-in APIs call; a capability added to the record
    is here too), the app's settings, the data folder and a logger. The services start with
    the sidecar's components: call them in :meth:`ApiPlugin.start` and in handlers, not in
    ``__init__``. A hot reload swaps components under the same services, so a plugin sees it
    without doing anything. Built with :meth:`of`."""

    plugin_name: str
    logger: logging.Logger

    @classmethod
    def of(cls, services: CapabilityServices, plugin_name: str) -> PluginContext:
        """The context of plugin ``plugin_name`` over ``services``."""
        return cls(**{f.name: getattr(services, f.name) for f in fields(services)},
                   plugin_name=plugin_name,
                   logger=logging.getLogger(f"pylotto.plugins.{plugin_name}"))

    @property
    def app(self) -> AppConfig:
        """The app's id (``app.app_id``) and how the sidecar reaches it (``app.http_port``,
        ``app.grpc_callback_port``, ``app.protocol``...)."""
        return self.context.app

    @property
    def data_dir(self) -> Path:
        """Where the sidecar keeps files; a plugin may use a sub-folder named after itself."""
        return self.context.data_dir


class ApiPlugin:
    """Base class of an API plugin. Override :meth:`add_grpc` (and/or :meth:`add_http`);
    ``self.context`` is the :class:`PluginContext`."""

    version: str = ""
    """Shown by ``pylotto plugins``; the package's version is used when empty."""

    def __init__(self, context: PluginContext) -> None:
        self.context = context

    def add_grpc(self, server: grpc.aio.Server) -> Sequence[str]:
        """Add servicers to ``server`` (``add_XServicer_to_server(servicer, server)``) and
        return the full names of the services added (``my.pkg.v1.Counter``)."""
        return ()

    def add_http(self, app: web.Application) -> None:
        """Add aiohttp routes to the Dapr HTTP API app (only called when that listener is on).
        Use a path of your own, e.g. ``/v1.0-plugins/<name>/...``."""

    async def start(self) -> None:
        """Called once the components are up, before the listeners accept calls."""

    async def stop(self) -> None:
        """Called when the sidecar stops, after the listeners stop."""


PluginFactory = Callable[[PluginContext], ApiPlugin]


@dataclass(frozen=True)
class PluginInfo:
    """One installed plugin entry point (component or API) as ``pylotto plugins`` shows it."""

    group: str
    name: str
    target: str
    distribution: str


def installed(group: str = ENTRY_POINT_GROUP) -> list[PluginInfo]:
    """Every entry point of ``group`` on the Python path, sorted by name."""
    return sorted((PluginInfo(group, ep.name, ep.value, _distribution(ep))
                   for ep in entry_points(group=group)), key=lambda p: p.name)


def _distribution(ep: EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else "?"


@dataclass
class LoadedPlugins:
    """The API plugins of one sidecar, built from the entry points at start."""

    plugins: dict[str, ApiPlugin]

    def add_grpc(self, server: grpc.aio.Server) -> list[str]:
        services: list[str] = []
        for name, plugin in self.plugins.items():
            with _blamed(name, "add its gRPC services"):
                services.extend(plugin.add_grpc(server))
        return services

    def add_http(self, app: web.Application) -> None:
        for name, plugin in self.plugins.items():
            with _blamed(name, "add its HTTP routes"):
                plugin.add_http(app)

    async def start(self) -> None:
        for name, plugin in self.plugins.items():
            with _blamed(name, "start"):
                await plugin.start()

    async def stop(self) -> None:
        for name, plugin in self.plugins.items():
            try:
                await plugin.stop()
            except Exception:
                logging.getLogger("pylotto.plugins").exception("API plugin %r: stop failed", name)


@contextmanager
def _blamed(name: str, what: str) -> Iterator[None]:
    """A plugin's failure as a ConfigError naming it (start-up stops, exit code 2)."""
    try:
        yield
    except Exception as exc:
        raise ConfigError(f"API plugin {name!r} failed to {what}: "
                          f"{type(exc).__name__}: {exc}") from exc


def load(services: CapabilityServices, status: RuntimeStatus) -> LoadedPlugins:
    """Import and build every ``pylotto.apis`` entry point over ``services``; ConfigError
    naming the plugin when one cannot be imported or built. The loaded plugins are listed in
    ``status``'s extended metadata."""
    plugins: dict[str, ApiPlugin] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"API plugin {ep.name!r} ({ep.value}, from {_distribution(ep)})"
        try:
            factory: Any = ep.load()
        except Exception as exc:
            raise ConfigError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}") from exc
        try:
            plugin = factory(PluginContext.of(services, ep.name))
        except Exception as exc:
            raise ConfigError(f"{where} failed to build: {type(exc).__name__}: {exc}") from exc
        if not isinstance(plugin, ApiPlugin):
            raise ConfigError(f"{where} is not a pylotto.plugins.ApiPlugin "
                              f"(got {type(plugin).__name__})")
        plugins[ep.name] = plugin
    if plugins:
        status.set_metadata(EXTENDED_METADATA_KEY, ",".join(sorted(plugins)))
        logging.getLogger("pylotto.plugins").info("API plugins: %s", ", ".join(sorted(plugins)))
    return LoadedPlugins(plugins)
