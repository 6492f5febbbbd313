"""Sequencer contract.

A sequencer keeps one counter per key; keys reaching it are already namespaced and prefixed
(``sequencer|||`` + ``keyPrefix``: the capability's job). Every id a component hands out for a
key is larger than every id it handed out before for that key, across restarts for a durable
backend: a component must make a counter move durable *before* it returns the ids.

Verbs:

- ``next_id`` (required): one id, atomically (Redis ``INCR``, an etcd revision, an SQL
  ``UPDATE ... RETURNING``). STRONG requests always use it.
- ``ensure_bigger_than`` (required): make the next id of a key larger than a floor
  (``biggerThan``); the capability calls it once per configured key at start. A backend that
  cannot move its counter forward raises ConfigError when the floor is not met.
- ``get_segment`` (optional, :class:`SegmentSequencer`): reserve ``size`` consecutive ids in one
  step; the capability serves WEAK requests from these segments.
"""

from __future__ import annotations

import abc
import enum
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, field_validator

from pylotto.components.base import Component
from pylotto.core.keys import KeyPrefix
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata

DEFAULT_SEGMENT_SIZE = 1000


class Feature(enum.StrEnum):
    SEGMENT = "SEGMENT"
    """The component reserves ranges of ids in one step (:class:`SegmentSequencer`)."""


class SequencerSettings(ComponentSettings):
    """Keys every sequencer accepts; the capability applies ``keyPrefix`` and ``biggerThan``."""

    key_prefix: KeyPrefix = Field("appid", alias="keyPrefix")
    bigger_than: dict[str, int] = Field(default_factory=dict, alias="biggerThan")
    """Key (as the app sends it) → floor: the first id handed out for the key is above it.
    A map, or the same as a JSON object in a string (metadata values are strings)."""

    @field_validator("bigger_than", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"expected a JSON object of key → integer: {exc}") from None
        return value

    @field_validator("bigger_than")
    @classmethod
    def _keys_without_separator(cls, value: dict[str, int]) -> dict[str, int]:
        for key in value:
            if not key or "||" in key:
                raise ValueError(f"key {key!r} must be non-empty and can't contain '||'")
        return value


class SegmentSettings(SequencerSettings):
    segment_size: int = Field(DEFAULT_SEGMENT_SIZE, alias="segmentSize", ge=1)
    """How many ids a WEAK request reserves at a time (the sidecar caches them)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """The ids ``first`` to ``last``, both included."""

    first: int
    last: int


class Sequencer(Component):
    """Strictly increasing ids per key."""

    Settings: ClassVar[type[ComponentSettings]] = SequencerSettings
    settings: SequencerSettings

    @abc.abstractmethod
    async def next_id(self, key: str, metadata: Metadata) -> int:
        """The next id of ``key`` (the first is 1 unless ``ensure_bigger_than`` moved it)."""

    @abc.abstractmethod
    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        """Make every later id of ``key`` larger than ``floor`` (no effect if already so)."""


class SegmentSequencer(Sequencer):
    """A sequencer that can reserve a range of ids in one step (declares SEGMENT)."""

    Settings: ClassVar[type[ComponentSettings]] = SegmentSettings
    settings: SegmentSettings

    @property
    def segment_size(self) -> int:
        return self.settings.segment_size

    @abc.abstractmethod
    async def get_segment(self, key: str, size: int) -> Segment:
        """Reserve the next ``size`` ids of ``key``: ``Segment(first, first + size - 1)``."""
