"""Actor timer and reminder time forms as daprd 1.19 reads them (dapr/kit's ParseDuration and
ParseTime, setReminderTimes, the scheduler's scheduleFromPeriod): ISO 8601 with repetitions,
Go durations, RFC 3339, month periods (timers yes, reminders no), expired TTLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pylotto.capabilities.actors.periods import (
    INFINITE,
    Duration,
    PeriodError,
    add_date,
    go_duration_string,
    parse_duration,
    parse_iso_duration,
    parse_time,
    schedule_from_period,
    timer_period,
    timer_times,
)
from pylotto.core.schedule import Schedule

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("period", "schedule", "repeats"), [
    ("R5/PT10S", "@every 10s", 5),
    ("PT10S", "@every 10s", None),
    ("10s", "@every 10s", None),
    ("0h0m10s0ms0μs", "@every 10s", None),  # the Python SDK's timedelta form
    ("1h30m", "@every 1h30m0s", None),
    ("PT1H30M", "@every 1h30m0s", None),
    ("R3/PT1M30S", "@every 1m30s", 3),
    ("500ms", "@every 500ms", None),
    ("1.5s", "@every 1.5s", None),
    ("R0/PT1S", "@every 1s", None),  # scheduleFromPeriod only passes repeats > 0
    ("", None, None),
])
def test_reminder_periods_map_to_every_and_repeats(period: str, schedule: str | None,
                                                    repeats: int | None) -> None:
    assert schedule_from_period(period) == (schedule, repeats)
    if schedule is not None:  # what the scheduler is given, it takes
        assert Schedule.parse(schedule).every is not None


@pytest.mark.parametrize("period", ["P1M", "P1Y", "P1D", "P1W", "R5/P1DT1H", "P1MT10S",
                                    "PT0.5S", "every day", "10"])
def test_calendar_and_bad_periods_are_refused_for_reminders(period: str) -> None:
    with pytest.raises(PeriodError) as caught:
        schedule_from_period(period)
    assert str(caught.value) == f"unsupported period format: {period}"


def test_timers_take_month_periods_and_add_them_as_go_adddate() -> None:
    period = timer_period("P1M")
    assert period.every == Duration(months=1)
    assert period.has_repeats(INFINITE)
    jan31 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert period.following(jan31) == datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    assert timer_period("P1Y2M3DT4H5M6S").following(T0) == datetime(
        2028, 2, 4, 14, 5, 6, tzinfo=UTC)
    assert timer_period("P2W").following(T0) == T0 + timedelta(days=14)
    assert add_date(T0, 0, -12, 0) == T0.replace(year=2025)


@pytest.mark.parametrize(("period", "error"), [
    ("R0/PT1S", "has zero repetitions"),
    ("bogus", "parse error: unsupported duration format: bogus"),
    ("PT1.5S", "parse error: unsupported duration format: PT1.5S"),
    ("R/PT1S", "parse error: unsupported duration format: R/PT1S"),
])
def test_bad_timer_periods(period: str, error: str) -> None:
    with pytest.raises(PeriodError) as caught:
        timer_period(period)
    assert str(caught.value) == error


def test_the_iso_reader_is_kits() -> None:
    assert parse_iso_duration("R5/PT10S") == Duration(duration=timedelta(seconds=10),
                                                      repeats=5)
    assert parse_iso_duration("R5") == Duration(repeats=5)  # repetitions of nothing
    assert parse_iso_duration("P1W2D") == Duration(days=9)
    assert parse_iso_duration("PT10X") == Duration()  # unknown characters are skipped
    assert parse_iso_duration("PT2H").duration == timedelta(hours=2)
    assert parse_iso_duration("P1DT") == Duration(days=1)  # a trailing T is legal to kit
    for bad in ("P", "10s", "PT1Y", "P1H", "PTM", "R5/10s", "PT1.5S"):
        with pytest.raises(PeriodError, match="unsupported ISO8601 duration format"):
            parse_iso_duration(bad)
    assert parse_duration("90s") == Duration(duration=timedelta(seconds=90))


@pytest.mark.parametrize(("text", "expected"), [
    ("10s", T0 + timedelta(seconds=10)),
    ("1h30m", T0 + timedelta(hours=1, minutes=30)),
    ("PT10S", T0 + timedelta(seconds=10)),
    ("P1M", datetime(2027, 1, 1, 10, 0, tzinfo=UTC)),
    ("2026-12-24T18:00:00Z", datetime(2026, 12, 24, 18, 0, tzinfo=UTC)),
    ("2026-12-24T18:00:00.5+02:00", datetime(2026, 12, 24, 16, 0, 0, 500000, tzinfo=UTC)),
    ("2026-12-24T18:00:00.123456789Z", datetime(2026, 12, 24, 18, 0, 0, 123456, tzinfo=UTC)),
])
def test_points_in_time(text: str, expected: datetime) -> None:
    assert parse_time(text, T0) == expected


@pytest.mark.parametrize(("text", "error"), [
    ("R2/PT1S", "repetitions are not allowed"),
    ("tomorrow", "unsupported time/duration format: tomorrow"),
    ("2026-12-24 18:00:00", "unsupported time/duration format: 2026-12-24 18:00:00"),
    ("2026-12-24T18:00:00", "unsupported time/duration format: 2026-12-24T18:00:00"),
])
def test_bad_points_in_time(text: str, error: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_time(text, T0)
    assert str(caught.value) == error


def test_timer_times_due_period_and_ttl() -> None:
    times = timer_times("T||1||t", "5s", "R5/PT10S", "1m", T0)
    assert times.first == T0 + timedelta(seconds=5)
    assert times.period.repeats == 5
    assert times.expiration == T0 + timedelta(seconds=65)  # the TTL counts from the due time
    assert times.active(T0 + timedelta(seconds=64))
    assert not times.active(T0 + timedelta(seconds=65))
    now_times = timer_times("T||1||t", "", "", "", T0)
    assert now_times.first == T0 and now_times.expiration is None
    assert not now_times.period.has_repeats(now_times.period.repeats)  # one tick


def test_an_expired_ttl_is_refused() -> None:
    with pytest.raises(PeriodError) as caught:
        timer_times("T||1||t", "", "1s", "2026-12-01T09:00:00Z", T0)
    assert str(caught.value) == ("timer T||1||t has already expired: dueTime: 2026-12-01 "
                                 "10:00:00 +0000 UTC TTL: 2026-12-01T09:00:00Z")
    with pytest.raises(PeriodError, match="has already expired"):  # due after the TTL time
        timer_times("T||1||t", "2h", "1s", "2026-12-01T11:00:00Z", T0)


@pytest.mark.parametrize(("due", "period", "ttl", "error"), [
    ("soon", "", "", "error parsing timer due time: unsupported time/duration format: soon"),
    ("", "R0/PT1S", "", "invalid timer period: has zero repetitions"),
    ("", "1s", "R2/PT1S", "error parsing timer TTL: repetitions are not allowed"),
])
def test_timer_errors_say_which_field(due: str, period: str, ttl: str, error: str) -> None:
    with pytest.raises(PeriodError) as caught:
        timer_times("T||1||t", due, period, ttl, T0)
    assert str(caught.value) == error


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(0), "0s"), (timedelta(seconds=10), "10s"), (timedelta(seconds=90), "1m30s"),
    (timedelta(hours=1), "1h0m0s"), (timedelta(milliseconds=500), "500ms"),
    (timedelta(microseconds=1500), "1.5ms"), (timedelta(microseconds=7), "7µs"),
    (timedelta(seconds=1.5), "1.5s"), (timedelta(seconds=-2), "-2s"),
])
def test_go_duration_strings(delta: timedelta, text: str) -> None:
    assert go_duration_string(delta) == text
