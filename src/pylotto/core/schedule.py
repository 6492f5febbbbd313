"""The time forms of Dapr's Jobs API, parsed once: schedules, due times and TTLs.

A **schedule** (``Job.schedule``) is

- a cron expression of 6 fields, seconds first (``"0 30 * * * *"``: every hour on the half
  hour), optionally after ``TZ=<zone> `` or ``CRON_TZ=<zone> `` (default UTC); fields as
  dapr/kit's cron parser reads them (``?`` means ``*``; day of month and day of week, both
  restricted, match either), computed with croniter (imported by the first cron schedule);
- ``@every <Go duration>`` (``@every 1h30m``): every that long after the previous trigger;
- ``@yearly`` / ``@annually``, ``@monthly``, ``@weekly``, ``@daily`` / ``@midnight``,
  ``@hourly``: midnight Jan 1st, midnight on the 1st, midnight on Sunday, midnight, the top of
  the hour (in the expression's zone).

A **point in time** (``due_time``, ``ttl``) is RFC 3339 (``2026-12-01T10:00:00Z``), a Go
duration (``90s``, ``1h30m``) or a non-repeating ISO 8601 duration (``PT10S``, ``P1DT2H``),
the durations counted from a start (the job's creation; a TTL from its due time when it has
one), as go-etcd-cron's ``parsePointInTime``. The error texts are Dapr's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
             "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_ISO = re.compile(r"^(R(\d*)/)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                  r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
EVERY = "@every "


class ScheduleError(ValueError):
    """A time form that does not parse; the message is the one daprd gives."""


def parse_go_duration(text: str) -> timedelta:
    """A Go ``time.ParseDuration`` string (``1h30m``, ``-1.5s``, ``300ms``, ``0``)."""
    s = text.strip()
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return timedelta(0)
    if not s:
        raise ScheduleError(f'time: invalid duration "{text}"')
    pos, seconds = 0, 0.0
    while pos < len(s):
        match = _GO_PART.match(s, pos)
        if match is None:
            raise ScheduleError(f'time: invalid duration "{text}"')
        seconds += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    return timedelta(seconds=sign * seconds)


def format_go_duration(delta: timedelta) -> str:
    """``delta`` as Go prints a duration (``1h30m0s``, ``1.5s``, ``0s``)."""
    total = delta.total_seconds()
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{sign}{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{sign}{int(minutes)}m{text}"
    return sign + text


def parse_point_in_time(text: str, start: datetime) -> datetime:
    """RFC 3339, a Go duration or a non-repeating ISO 8601 duration after ``start``."""
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        when = None
    if when is not None and "T" in text.upper():
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    try:
        return start + parse_go_duration(text)
    except ScheduleError:
        pass
    match = _ISO.match(text.strip())
    if match is None or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise ScheduleError("due time format not recognized")
    if match.group(1):
        raise ScheduleError("repeats not supported for due time")
    years, months, weeks, days, hours, minutes = (int(g or 0) for g in match.groups()[2:8])
    seconds = float(match.group(9) or 0)
    month = start.month - 1 + months
    year = start.year + years + month // 12
    moved = start.replace(year=year, month=month % 12 + 1,
                          day=min(start.day, _days_in(year, month % 12 + 1)))
    return moved + timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes,
                             seconds=seconds)


def _days_in(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _croniter() -> Any:
    """croniter's class, imported by the first cron schedule (a sidecar with none never loads
    it, nor dateutil)."""
    from croniter import croniter  # type: ignore[import-untyped]

    return croniter


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed ``Job.schedule``: :meth:`next_after` gives the trigger after a time."""

    text: str
    every: timedelta | None = None
    cron: str = ""
    zone: tzinfo = UTC

    @classmethod
    def parse(cls, text: str, *, seconds_optional: bool = False,
              zone: tzinfo = UTC) -> Schedule:
        """``seconds_optional``: a 5-field expression (no seconds, firing at second 0) is
        accepted too, as by the parser of Dapr's cron binding; ``zone``: the zone of an
        expression without ``TZ=`` (the Jobs API: UTC; the cron binding: the host's)."""
        if not text:
            raise ScheduleError("empty spec string")
        spec = text
        if spec.startswith(("TZ=", "CRON_TZ=")):
            head, _, spec = spec.partition(" ")
            name = head.partition("=")[2]
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ScheduleError(f"provided bad location {name}: unknown time zone "
                                    f"{name}") from None
            spec = spec.strip()
        if spec.startswith("@"):
            if spec.startswith(EVERY):
                try:
                    every = parse_go_duration(spec[len(EVERY):])
                except ScheduleError as err:
                    raise ScheduleError(f"failed to parse duration {spec}: {err}") from None
                if every <= timedelta(0):
                    raise ScheduleError(f"failed to parse duration {spec}: not positive")
                return cls(text, every=every, zone=zone)
            if spec not in _DESCRIPTORS:
                raise ScheduleError(f"unrecognized descriptor: {spec}")
            spec = _DESCRIPTORS[spec]
        fields = spec.split()
        if seconds_optional and len(fields) == 5:
            fields = ["0", *fields]
        elif seconds_optional and len(fields) != 6:
            raise ScheduleError(f"expected 5 to 6 fields, found {len(fields)}: "
                                f"[{' '.join(fields)}]")
        if len(fields) != 6:
            raise ScheduleError(f"expected exactly 6 fields, found {len(fields)}: "
                                f"[{' '.join(fields)}]")
        cron = " ".join("*" if f == "?" else f for f in fields)
        if not _croniter().is_valid(cron, second_at_beginning=True):
            raise ScheduleError(f"failed to parse cron expression: {spec}")
        return cls(text, cron=cron, zone=zone)

    def next_after(self, moment: datetime) -> datetime:
        """The first trigger strictly after ``moment`` (UTC)."""
        if self.every is not None:
            return moment + self.every
        local = moment.astimezone(self.zone)
        following: datetime = _croniter()(self.cron, local, second_at_beginning=True).get_next(
            datetime)
        return following.astimezone(UTC)
