"""Request metadata rules components-contrib's bindings share (``metadata/utils.go`` and
dapr/kit's ``GetMetadataProperty``)."""

from __future__ import annotations

from datetime import timedelta

from pylotto.core.errors import InvalidArgument
from pylotto.core.schedule import ScheduleError, parse_go_duration

TTL_KEYS = ("ttl", "ttlInSeconds")
"""Request metadata keys of a time to live, first found wins."""


def metadata_value(metadata: dict[str, str], *keys: str) -> str:
    """The value of the first of ``keys`` in ``metadata``, case ignored (dapr/kit's
    ``GetMetadataProperty``); empty when none is there."""
    lowered = {k.lower(): v for k, v in metadata.items()}
    for key in keys:
        if key.lower() in lowered:
            return lowered[key.lower()]
    return ""


def requested_ttl(metadata: dict[str, str]) -> timedelta | None:
    """``ttl`` / ``ttlInSeconds`` (case ignored) as components-contrib's ``TryGetTTL`` reads
    it: a Go duration (a negative one is 0), else a whole number of seconds above zero;
    None when not given."""
    text = metadata_value(metadata, *TTL_KEYS)
    if not text:
        return None
    try:
        return max(parse_go_duration(text), timedelta(0))
    except ScheduleError:
        pass
    try:
        seconds = int(text.strip())
    except ValueError:
        raise InvalidArgument(f"ttl value must be a valid integer: actual is '{text}'") from None
    if seconds <= 0:
        raise InvalidArgument(f"ttl value must be higher than zero: actual is '{seconds}'")
    return timedelta(seconds=seconds)
