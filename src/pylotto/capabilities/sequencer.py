"""Sequencer: the next id of a key, from a named sequencer store.

Rules shared by every facade (Layotto's order, ``api_sequencer.go``): no sequencer at all →
NotConfigured; empty key → InvalidArgument; a key with ``||`` → InvalidArgument; unknown store
→ ComponentNotFound. The key becomes ``sequencer|||{prefix}||{key}`` (``keyPrefix``, default
``appid``; see :mod:`pylotto.core.keys`).

STRONG asks the component for every id. WEAK is served from segments when the component can
reserve them (:class:`~pylotto.components.sequencer.base.SegmentSequencer`): one
:class:`SegmentCache` per (store, key) — never shared between stores — hands out the ids of a
reserved segment and fetches the next one in the background when a tenth of it is left.
Within one sidecar the ids of a key, WEAK and STRONG mixed, strictly increase: a cache never
hands out an id at or below the last one it gave or saw from a STRONG call. Ids left in a
segment when the sidecar stops are skipped (gaps), never reused.

``biggerThan`` (component config, key as the app sends it → floor) is applied at start, on the
prefixed key, so the first id of that key is above the floor.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Unpack

from pylotto.capabilities.base import Capability, ComponentSet, Policies, RuntimeContext
from pylotto.components.sequencer.base import Feature, Segment, SegmentSequencer, Sequencer
from pylotto.core.errors import ConfigError, Internal, InvalidArgument, PylottoError
from pylotto.core.keys import check_no_separator, key_prefix, prefixed

log = logging.getLogger("pylotto.sequencer")

NAMESPACE = "sequencer|||"
"""Every stored sequencer key starts with this, as in Layotto (``sequencer`` + ``|||``)."""


MAX_FETCHES = 50
"""Segments reserved in a row, while concurrent STRONG calls keep racing past them, before
giving up (Internal); a store whose ids do not grow at all is reported at once."""


class Increment(enum.IntEnum):
    """``SequencerOptions.AutoIncrement``; the numbers are the wire's. Default WEAK."""

    WEAK = 0
    STRONG = 1


DEFAULT_INCREMENT = Increment.WEAK
"""When the request has no options (Layotto's default)."""


def increment_from_wire(value: int | None) -> Increment:
    """The wire's ``options.increment``; None (no options given): :data:`DEFAULT_INCREMENT`."""
    if value is None:
        return DEFAULT_INCREMENT
    try:
        return Increment(value)
    except ValueError:
        raise InvalidArgument("options.Increment is illegal") from None


class SegmentCache:
    """Hands out the ids of reserved segments of one key, strictly increasing.

    ``fetch`` reserves a new segment. ``issued`` is the highest id given out or observed
    (:meth:`observe`); an id at or below it is skipped, so a segment reserved before a STRONG
    call never yields an id below that call's.
    """

    def __init__(self, fetch: Callable[[], Coroutine[Any, Any, Segment]], refill_at: int,
                 label: str) -> None:
        self._fetch = fetch
        self._refill_at = refill_at
        self._label = label
        self._next = 1
        self._last = 0
        self.issued = 0
        self._lock = asyncio.Lock()
        self._prefetch: asyncio.Task[Segment] | None = None

    def observe(self, issued: int) -> None:
        """An id of this key handed out elsewhere (a STRONG call)."""
        self.issued = max(self.issued, issued)

    def _take(self) -> int | None:
        candidate = max(self._next, self.issued + 1)
        if candidate > self._last:
            return None
        self._next = self.issued = candidate
        self._next += 1
        if self._last - candidate <= self._refill_at and self._prefetch is None:
            self._prefetch = asyncio.create_task(self._fetch())
            self._prefetch.add_done_callback(self._prefetch_done)
        return candidate

    def _prefetch_done(self, task: asyncio.Task[Segment]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.debug("%s: prefetching a segment failed: %r", self._label, task.exception())

    async def next_id(self) -> int:
        while True:
            taken = self._take()
            if taken is not None:
                return taken
            async with self._lock:
                if max(self._next, self.issued + 1) <= self._last:
                    continue  # another caller refilled while we waited
                segment = await self._refill()
                self._next, self._last = segment.first, segment.last

    async def _refill(self) -> Segment:
        """The prefetched segment if it is usable, else a freshly reserved one."""
        task = self._prefetch
        if task is not None:
            await asyncio.wait([task])  # a cancelled caller leaves the prefetch running
            self._prefetch = None
            if not task.cancelled() and task.exception() is None:
                segment = task.result()
                if segment.last > self.issued:
                    return segment
        previous = None
        for _ in range(MAX_FETCHES):
            segment = await self._fetch()
            if segment.first <= segment.last and segment.last > self.issued:
                return segment
            if segment.first > segment.last or (previous is not None
                                                 and segment.last <= previous.last):
                break  # the store's ids do not grow: it is broken
            # STRONG calls raced past this segment (they are still growing): reserve another
            previous = segment
        raise Internal(
            f"{self._label}: the store returned ids {segment.first}..{segment.last}, "
            f"not above the last id handed out ({self.issued})"
        )

    async def close(self) -> None:
        task, self._prefetch = self._prefetch, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])


class SequencerCapability(Capability[Sequencer]):
    """The sequencer API over the configured sequencer stores."""

    def __init__(self, components: ComponentSet[Sequencer], context: RuntimeContext,
                 **policies: Unpack[Policies]) -> None:
        super().__init__(components, context, **policies)
        self._caches: dict[tuple[str, str], SegmentCache] = {}

    def _stored_key(self, store: Sequencer, store_name: str, key: str) -> str:
        prefix = key_prefix(store.settings.key_prefix, app_id=self.context.app_id,
                            component=store_name)
        return NAMESPACE + prefixed(prefix, key)

    async def start(self) -> None:
        """Apply each store's ``biggerThan``; a failure stops the sidecar from starting."""
        for store_name, store in self.components.items():
            await self._apply_floors(store_name, store)

    async def _apply_floors(self, store_name: str, store: Sequencer) -> None:
        for key, floor in store.settings.bigger_than.items():
            if floor <= 0:
                continue
            try:
                await store.ensure_bigger_than(self._stored_key(store, store_name, key), floor)
            except PylottoError as err:
                raise ConfigError(
                    f"sequencer store {store_name}: biggerThan {key}={floor}: {err.message}"
                ) from err
            log.debug("sequencer store %s: ids of %s start above %d", store_name, key, floor)

    async def stop(self) -> None:
        caches, self._caches = self._caches, {}
        for cache in caches.values():
            await cache.close()

    async def detach(self, component_name: str) -> None:
        """Hot reload: forget the segments cached from store ``component_name``."""
        for key in [k for k in self._caches if k[0] == component_name]:
            await self._caches.pop(key).close()

    async def attach(self, component_name: str) -> None:
        """Hot reload: apply the ``biggerThan`` of the new store (failures are logged)."""
        try:
            await self._apply_floors(component_name, self.components.get(component_name))
        except ConfigError as exc:
            log.error("hot reload: %s", exc.message)

    async def get_next_id(
        self,
        store_name: str,
        key: str,
        increment: Increment = DEFAULT_INCREMENT,
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        """The next id of ``key``: larger than every id this sidecar gave for it before."""
        if len(self.components) == 0:
            raise self.components.lookup_error("not_configured", store_name)
        if not key:
            raise InvalidArgument(f"Key is empty in sequencer store {store_name}")
        check_no_separator(key)
        store = self.components.get(store_name)
        stored_key = self._stored_key(store, store_name, key)
        caches = self._caches
        try:
            if (increment is Increment.WEAK and isinstance(store, SegmentSequencer)
                    and store.has(Feature.SEGMENT)):
                cache = caches.get((store_name, stored_key))
                if cache is None:
                    cache = caches[(store_name, stored_key)] = self._new_cache(
                        store, store_name, stored_key
                    )
                return await cache.next_id()
            next_id = await self.call(store_name, lambda: store.next_id(
                stored_key, dict(metadata or {})))
        except PylottoError as err:
            raise type(err)(
                f"failed to get next id of {key} from sequencer store {store_name}: "
                f"{err.message}"
            ) from err
        cache = caches.get((store_name, stored_key))
        if cache is not None:
            cache.observe(next_id)
        return next_id

    @staticmethod
    def _new_cache(store: SegmentSequencer, store_name: str, stored_key: str) -> SegmentCache:
        size = store.segment_size

        async def fetch() -> Segment:
            return await store.get_segment(stored_key, size)

        return SegmentCache(fetch, size // 10, f"sequencer store {store_name} key {stored_key}")
