"""Hot reload: the component files are watched while the sidecar runs.

The files are the config file given with ``--config`` (its components) and the ``*.yaml`` /
``*.yml`` manifests of the ``--resources-path`` folders. Every ``hot_reload.interval_seconds``
their contents are compared with the last ones read; on a change (once two checks agree, so a
file being written is not read half-way) the component list is read again and validated, and
the runtime starts the added and changed components, swaps them in and closes the replaced and
removed ones after ``hot_reload.drain_seconds`` (see :meth:`Runtime.reload_components`). Calls to
untouched components never notice. A file that does not parse or validate changes nothing and
is reported in the log; a component that cannot start is reported and the old one keeps
serving. Only components are reloaded: other settings (listeners, app, subscriptions,
resiliency...) are read at start.

Layotto's ``Lifecycle.ApplyConfiguration`` changes one component's metadata through the API on
the same path (:meth:`Runtime.reconfigure`: validated, started next to the old one, swapped in);
the next change of the files makes the running components those of the files again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from pylotto.config import manifests
from pylotto.config import model as config
from pylotto.config.model import ComponentSpec, HotReloadConfig
from pylotto.core.errors import ConfigError
from pylotto.core.tasks import stop_task
from pylotto.process.runtime import Runtime

log = logging.getLogger("pylotto.hotreload")


@dataclass(frozen=True)
class ComponentSources:
    """Where the components of a sidecar come from, as the command line gave them."""

    config_path: Path | None = None
    folders: tuple[Path, ...] = ()

    def __bool__(self) -> bool:
        return self.config_path is not None or bool(self.folders)

    def files(self) -> list[Path]:
        found = [self.config_path] if self.config_path is not None else []
        for folder in self.folders:
            with contextlib.suppress(OSError):
                found.extend(sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]))
        return found

    def fingerprint(self) -> str:
        """A digest of the names and contents of every file (a missing file counts too)."""
        digest = hashlib.sha256()
        for path in self.files():
            digest.update(str(path).encode() + b"\0")
            try:
                digest.update(path.read_bytes())
            except OSError as exc:
                digest.update(f"unreadable: {exc.strerror}".encode())
            digest.update(b"\0")
        return digest.hexdigest()

    def load(self, app_id: str) -> list[ComponentSpec]:
        """The components the files give now (as at start); ConfigError when they are not
        valid."""
        given = config.load(self.config_path) if self.config_path is not None else None
        if given is not None and given.dapr is None:  # a pylotto.yaml: folders add to it
            base = given.components
        else:  # no file, or a Dapr Configuration: folders replace the embedded default
            base = [] if self.folders else config.embedded_default().components
        loaded = manifests.load(list(self.folders), app_id)[0] if self.folders else []
        specs = [*base, *loaded]
        config.validate_components(config.RuntimeConfig(
            components=specs, source=", ".join(str(f) for f in self.files())))
        return specs


class HotReloader:
    """Watches ``sources`` and applies their changes to ``runtime``."""

    def __init__(self, runtime: Runtime, sources: ComponentSources,
                 settings: HotReloadConfig) -> None:
        self.runtime = runtime
        self.sources = sources
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._seen = ""

    def start(self) -> None:
        self._seen = self.sources.fingerprint()
        self._task = asyncio.create_task(self._watch())
        log.info("watching %d component file(s) for changes", len(self.sources.files()))

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None

    async def _watch(self) -> None:
        interval = self.settings.interval_seconds
        while True:
            await asyncio.sleep(interval)
            now = await asyncio.to_thread(self.sources.fingerprint)
            if now == self._seen:
                continue
            await asyncio.sleep(min(interval, 0.5))  # let a file being written settle
            if await asyncio.to_thread(self.sources.fingerprint) != now:
                continue
            self._seen = now
            try:
                await self.check()
            except Exception:
                log.exception("hot reload failed; the running components are kept")

    async def check(self) -> None:
        """Read the files and apply what changed."""
        try:
            specs = await asyncio.to_thread(self.sources.load, self.runtime.config.app.id)
        except ConfigError as exc:
            log.error("hot reload: %s; the running components are kept", exc.message)
            return
        result = await self.runtime.reload_components(specs)
        if result:
            log.info("hot reload: %s", result.summary())
