"""The time forms of actor timers and reminders, parsed as daprd 1.19 parses them.

- A **duration** (``period``) is dapr/kit's ``ParseDuration``: first an ISO 8601 duration,
  optionally repeated (``PT10S``, ``P1DT2H``, ``R5/PT10S``: 5 times every 10 s), else a Go
  duration (``10s``, ``1h30m``, the SDK's ``0h0m10s0ms0μs``). The ISO reader is kit's: whole
  numbers only, ``W`` counts 7 days, characters it does not know are skipped, ``R<n>`` without
  a duration is n repetitions of nothing.
- A **point in time** (``dueTime``, ``ttl``) is dapr/kit's ``ParseTime``: a non-repeating ISO
  duration or a Go duration after a start (now; a TTL counts from the due time), else an RFC
  3339 time.

**Timers** (``pkg/actors/api/reminders.go`` ``setReminderTimes``, ``period.go``) accept every
duration, month, year and day parts included (each added as Go's ``AddDate`` does, so Jan 31
plus one month is Mar 3). **Reminders** go to the scheduler, as in daprd 1.19 (``pkg/actors/
internal/scheduler/scheduler.go`` ``scheduleFromPeriod``): a period becomes the schedule
``@every <Go duration>`` plus ``repeats`` (R<n>, n > 0), and a period with year, month or day
parts is refused (``unsupported period format``), since ``@every`` has no calendar.

Errors are :class:`PeriodError` with daprd's texts; the callers give them their ``where``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pylotto.core.schedule import ScheduleError, format_go_duration, parse_go_duration

INFINITE = -1
"""``repeats`` of a period without ``R<n>``: it repeats until removed (or its TTL)."""

_ATOI = re.compile(r"^[+-]?\d+$")
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
                      r"([Zz]|[+-]\d{2}:\d{2})$")


class PeriodError(ValueError):
    """A time form daprd refuses; the text is daprd's."""


@dataclass(frozen=True, slots=True)
class Duration:
    """A parsed duration: calendar parts, a fixed part and its repetitions."""

    years: int = 0
    months: int = 0
    days: int = 0
    duration: timedelta = timedelta(0)
    repeats: int = INFINITE
    """``R<n>``'s n; :data:`INFINITE` without it."""

    @property
    def calendar(self) -> bool:
        """Has year, month or day parts (what ``@every`` cannot say)."""
        return bool(self.years or self.months or self.days)

    def after(self, moment: datetime) -> datetime:
        """``moment`` moved on by this duration (Go's ``AddDate`` then ``Add``)."""
        return add_date(moment, self.years, self.months, self.days) + self.duration


def _atoi(text: str, whole: str) -> int:
    if not _ATOI.match(text):
        raise PeriodError(f"unsupported ISO8601 duration format: {whole}")
    return int(text)


def parse_iso_duration(text: str) -> Duration:
    """dapr/kit's ``ParseISO8601Duration``: ``[R<n>/]P[<n>Y][<n>M][<n>W][<n>D][T[<n>H][<n>M]
    [<n>S]]`` with whole numbers."""
    bad = PeriodError(f"unsupported ISO8601 duration format: {text}")
    length = len(text)
    if length < 2:
        raise bad
    repeats = INFINITE
    i = 0
    if text[0] == "R":
        i = text.find("/")
        if i < 0:
            i = length
        if i - 1 < 1:
            raise bad
        repeats = _atoi(text[1:i], text)
        i += 1
        if i >= length:
            return Duration(repeats=repeats)
    if text[i] != "P":
        raise bad
    i += 1
    start, in_time = i, False
    years = months = days = 0
    fixed = timedelta(0)
    while i < length:
        char = text[i]
        if char == "T":
            if start != i:
                raise bad
            in_time, start = True, i + 1
        elif char in "YWDHSM":
            if start == i or (char in "YWD" and in_time) or (char in "HS" and not in_time):
                raise bad
            value = _atoi(text[start:i], text)
            if char == "Y":
                years = value
            elif char == "W":
                days += value * 7
            elif char == "D":
                days += value
            elif char == "H":
                fixed += timedelta(hours=value)
            elif char == "S":
                fixed += timedelta(seconds=value)
            elif in_time:
                fixed += timedelta(minutes=value)
            else:
                months = value
            start = i + 1
        i += 1  # anything else is skipped, as kit does
    return Duration(years, months, days, fixed, repeats)


def parse_duration(text: str) -> Duration:
    """dapr/kit's ``ParseDuration``: an ISO 8601 duration, else a Go duration."""
    try:
        return parse_iso_duration(text)
    except PeriodError:
        pass
    try:
        return Duration(duration=parse_go_duration(text))
    except ScheduleError:
        raise PeriodError(f"unsupported duration format: {text}") from None


def parse_time(text: str, start: datetime) -> datetime:
    """dapr/kit's ``ParseTime``: a non-repeating ISO 8601 duration or a Go duration after
    ``start``, else an RFC 3339 time (returned in UTC)."""
    try:
        iso = parse_iso_duration(text)
    except PeriodError:
        pass
    else:
        if iso.repeats != INFINITE:
            raise PeriodError("repetitions are not allowed")
        return iso.after(start)
    try:
        return start + parse_go_duration(text)
    except ScheduleError:
        pass
    match = _RFC3339.match(text)
    if match is not None:
        try:
            return datetime.fromisoformat(_iso_for_python(match)).astimezone(UTC)
        except ValueError:
            pass
    raise PeriodError(f"unsupported time/duration format: {text}")


def _iso_for_python(match: re.Match[str]) -> str:
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = (fraction or "")[1:7]
    zone = "+00:00" if zone in ("Z", "z") else zone
    return (f"{year}-{month}-{day}T{hour}:{minute}:{second}"
            f"{'.' + micro.ljust(6, '0') if micro else ''}{zone}")


def add_date(moment: datetime, years: int, months: int, days: int) -> datetime:
    """Go's ``Time.AddDate``: the month and day overflow into the next (Jan 31 + 1 month is
    Mar 3 in a common year)."""
    if not (years or months or days):
        return moment
    month_index = moment.year * 12 + (moment.month - 1) + years * 12 + months
    year, month = divmod(month_index, 12)
    first = moment.replace(year=year, month=month + 1, day=1)
    return first + timedelta(days=moment.day - 1 + days)


def go_duration_string(delta: timedelta) -> str:
    """``delta`` as Go's ``Duration.String`` prints it (``10s``, ``1m30s``, ``1h0m0s``,
    ``500ms``, ``1.5µs``... to the microsecond, a timedelta's resolution)."""
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    if micros == 0:
        return "0s"
    if abs(micros) >= 1_000_000:
        return format_go_duration(delta)
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    if micros < 1000:
        return f"{sign}{micros}µs"
    whole, rest = divmod(micros, 1000)
    fraction = f".{rest:03d}".rstrip("0") if rest else ""
    return f"{sign}{whole}{fraction}ms"


# ---- timers ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Period:
    """A timer's period (daprd's ``ReminderPeriod``): the text as given, parsed."""

    text: str = ""
    every: Duration = Duration()

    @property
    def repeats(self) -> int:
        return self.every.repeats

    def has_repeats(self, repeats: int) -> bool:
        """Whether a timer with ``repeats`` left fires again (any left, and a period that
        is not zero)."""
        every = self.every
        return repeats != 0 and bool(every.calendar or every.duration)

    def following(self, moment: datetime) -> datetime:
        return self.every.after(moment)


def timer_period(text: str) -> Period:
    """``NewReminderPeriod``: empty is no period (one tick); ``R0/...`` is refused."""
    if not text:
        return Period()
    try:
        every = parse_duration(text)
    except PeriodError as err:
        raise PeriodError(f"parse error: {err}") from None
    if every.repeats == 0:
        raise PeriodError("has zero repetitions")
    return Period(text, every)


@dataclass(frozen=True, slots=True)
class TimerTimes:
    """When a timer first fires, how it repeats and when it ends."""

    first: datetime
    period: Period
    expiration: datetime | None

    def active(self, moment: datetime) -> bool:
        """A tick at ``moment`` is before the end (daprd: strictly before)."""
        return self.expiration is None or moment < self.expiration


def timer_times(key: str, due_time: str, period: str, ttl: str, now: datetime,
                what: str = "timer") -> TimerTimes:
    """daprd's ``setReminderTimes``: the due time (empty: now), the period, the TTL counted
    from the due time; a TTL already past is refused. ``key``: ``<type>||<id>||<name>``, for
    the message."""
    first = now
    if due_time:
        try:
            first = parse_time(due_time, now)
        except PeriodError as err:
            raise PeriodError(f"error parsing {what} due time: {err}") from None
    try:
        parsed = timer_period(period)
    except PeriodError as err:
        raise PeriodError(f"invalid {what} period: {err}") from None
    expiration = None
    if ttl:
        try:
            expiration = parse_time(ttl, first)
        except PeriodError as err:
            raise PeriodError(f"error parsing {what} TTL: {err}") from None
        if now > expiration or first > expiration:
            raise PeriodError(f"{what} {key} has already expired: dueTime: "
                              f"{go_time_string(first)} TTL: {ttl}")
    return TimerTimes(first, parsed, expiration)


def go_time_string(moment: datetime) -> str:
    """``moment`` as Go's ``Time.String`` prints a UTC time (``2026-12-02 10:00:00.5 +0000
    UTC``)."""
    moment = moment.astimezone(UTC)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return f"{moment:%Y-%m-%d %H:%M:%S}{fraction} +0000 UTC"


# ---- reminders (the scheduler) ---------------------------------------------------------------

def schedule_from_period(period: str) -> tuple[str | None, int | None]:
    """daprd 1.19's ``scheduleFromPeriod``: the scheduler's ``(schedule, repeats)`` of a
    reminder period; ``(None, None)`` for none. Year, month and day parts are refused, and
    ``R0/`` (like no ``R``) repeats without end."""
    if not period:
        return None, None
    try:
        every = parse_duration(period)
    except PeriodError:
        raise PeriodError(f"unsupported period format: {period}") from None
    if every.years > 0 or every.months > 0 or every.days > 0:
        raise PeriodError(f"unsupported period format: {period}")
    repeats = every.repeats if every.repeats > 0 else None
    return "@every " + go_duration_string(every.duration), repeats
