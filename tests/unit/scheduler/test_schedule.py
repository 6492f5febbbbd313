"""The Jobs API's time forms and job rules, without a store: schedules (6-field cron with
seconds and a zone, ``@every``, descriptors), points in time, the checks in Dapr's order and
texts, the next-trigger rules (repeats, TTL, missed ticks fire once, failure policies)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pylotto.capabilities.scheduler.job import (
    FailurePolicy,
    JobSpec,
    Payload,
    check_request,
    new_record,
)
from pylotto.core import dapr_errors
from pylotto.core.errors import InvalidArgument
from pylotto.core.schedule import (
    Schedule,
    ScheduleError,
    format_go_duration,
    parse_go_duration,
    parse_point_in_time,
)

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("spec", "after", "expected"), [
    ("0 30 * * * *", T0, T0.replace(minute=30)),
    ("0 15 3 * * *", T0, datetime(2026, 12, 2, 3, 15, tzinfo=UTC)),
    ("*/10 * * * * ?", T0, T0 + timedelta(seconds=10)),
    ("0 0 9 * * mon-fri", T0, datetime(2026, 12, 2, 9, 0, tzinfo=UTC)),
    ("TZ=Europe/Paris 0 0 12 * * *", T0, datetime(2026, 12, 1, 11, 0, tzinfo=UTC)),
    ("CRON_TZ=America/New_York 0 0 6 * * *", T0, datetime(2026, 12, 1, 11, 0, tzinfo=UTC)),
    ("@every 1h30m", T0, T0 + timedelta(hours=1, minutes=30)),
    ("@hourly", T0, T0 + timedelta(hours=1)),
    ("@daily", T0, datetime(2026, 12, 2, tzinfo=UTC)),
    ("@midnight", T0, datetime(2026, 12, 2, tzinfo=UTC)),
    ("@weekly", T0, datetime(2026, 12, 6, tzinfo=UTC)),  # a Sunday
    ("@monthly", T0, datetime(2027, 1, 1, tzinfo=UTC)),
    ("@yearly", T0, datetime(2027, 1, 1, tzinfo=UTC)),
    ("@annually", T0, datetime(2027, 1, 1, tzinfo=UTC)),
])
def test_schedules(spec: str, after: datetime, expected: datetime) -> None:
    assert Schedule.parse(spec).next_after(after) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty spec string"),
    ("* * * * *", "expected exactly 6 fields, found 5: [* * * * *]"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("@every soon", 'failed to parse duration @every soon: time: invalid duration "soon"'),
    ("TZ=Mars/Olympus 0 0 * * * *", "provided bad location Mars/Olympus"),
    ("0 61 * * * *", "failed to parse cron expression: 0 61 * * * *"),
])
def test_bad_schedules(spec: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("[", r"\[").replace("*", r"\*")):
        Schedule.parse(spec)


def test_go_durations() -> None:
    assert parse_go_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_go_duration("1.5s") == timedelta(seconds=1.5)
    assert parse_go_duration("300ms") == timedelta(milliseconds=300)
    assert parse_go_duration("-2m") == timedelta(minutes=-2)
    assert parse_go_duration("0") == timedelta(0)
    for bad in ("", "1", "1d", "h"):
        with pytest.raises(ScheduleError):
            parse_go_duration(bad)
    assert format_go_duration(timedelta(hours=1, minutes=30)) == "1h30m0s"
    assert format_go_duration(timedelta(seconds=1.5)) == "1.5s"


def test_points_in_time() -> None:
    assert parse_point_in_time("2026-12-24T18:00:00Z", T0) == datetime(2026, 12, 24, 18,
                                                                        tzinfo=UTC)
    assert parse_point_in_time("2026-12-24T18:00:00+01:00", T0).hour == 18
    assert parse_point_in_time("90s", T0) == T0 + timedelta(seconds=90)
    assert parse_point_in_time("PT10S", T0) == T0 + timedelta(seconds=10)
    assert parse_point_in_time("P1DT2H", T0) == T0 + timedelta(days=1, hours=2)
    assert parse_point_in_time("P1M", T0) == datetime(2027, 1, 1, 10, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="due time format not recognized"):
        parse_point_in_time("tomorrow", T0)
    with pytest.raises(ScheduleError, match="repeats not supported for due time"):
        parse_point_in_time("R5/PT10S", T0)


def test_the_api_checks_in_daprd_order() -> None:
    with pytest.raises(InvalidArgument, match="Job is empty"):
        check_request(None)
    with pytest.raises(InvalidArgument, match="Name is empty"):
        check_request(JobSpec(""))
    with pytest.raises(InvalidArgument, match="Schedule is empty"):
        check_request(JobSpec("a"))


@pytest.mark.parametrize(("spec", "field", "detail"), [
    (JobSpec("a", due_time="1s", repeats=2), "job.repeats",
     "job must have a schedule to repeat"),
    (JobSpec("a", schedule="@hourly", repeats=0), "job.repeats",
     "defined repeats must be greater than 0"),
    (JobSpec("a", due_time="1s", ttl="1h"), "job.ttl", "job must have a schedule to have a ttl"),
    (JobSpec("a", schedule="@hourly", ttl="soon"), "job.ttl", "ttl format not recognized"),
    (JobSpec("a", schedule="@hourly", due_time="2h", ttl="2026-01-01T00:00:00Z"), "job.ttl",
     "ttl must be greater than due time"),
    (JobSpec("a", due_time="later"), "job.due_time", "due time format not recognized"),
    (JobSpec("a", schedule="nope"), "job.schedule", "expected exactly 6 fields"),
    (JobSpec("a", due_time="1s", data=Payload("type.googleapis.com/x", b"x" * (4 * 2**20 + 1))),
     "job.data", "data is 4194305 bytes, over the limit of 4194304 bytes"),
])
def test_bad_jobs_name_the_field(spec: JobSpec, field: str, detail: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        new_record(spec, T0)
    err = caught.value
    assert err.fields["field"] == field and detail in err.message
    rendered = dapr_errors.render(err, "http", app_id="app")
    assert rendered.http_status == 400 and rendered.grpc_code.name == "INVALID_ARGUMENT"
    assert rendered.message.startswith("failed to schedule job due to: job failed validation: ")
    violation = rendered.details[0].field_violations[0]
    assert violation.field == field


@pytest.mark.parametrize("name", ["my-job", "job_1", "Upper.Case", "a||b", "with space"])
def test_names_daprd_accepts(name: str) -> None:
    new_record(JobSpec(name, due_time="1s"), T0)


@pytest.mark.parametrize("name", ["a/b", "a||", "-", "ä", "x" * 300])
def test_names_daprd_refuses(name: str) -> None:
    with pytest.raises(InvalidArgument, match="job name is invalid") as caught:
        new_record(JobSpec(name, due_time="1s"), T0)
    assert caught.value.fields["field"] == "job.name"


def test_first_triggers() -> None:
    assert new_record(JobSpec("a", due_time="10s"), T0).next_at == T0 + timedelta(seconds=10)
    assert new_record(JobSpec("a", schedule="@every 1m"), T0).next_at == T0 + timedelta(
        minutes=1)
    due_first = new_record(JobSpec("a", schedule="@every 1m", due_time="5s"), T0)
    assert due_first.next_at == T0 + timedelta(seconds=5)
    past = new_record(JobSpec("a", due_time="2020-01-01T00:00:00Z"), T0)
    assert past.next_at is not None and past.next_at < T0  # fires at once, as daprd


def test_repeats_and_ttl_end_a_job() -> None:
    record = new_record(JobSpec("a", schedule="@every 1m", repeats=2), T0)
    assert record.next_at is not None
    record = record.after_tick(record.next_at)
    assert record.count == 1 and record.next_at == T0 + timedelta(minutes=2)
    assert record.after_tick(record.next_at).next_at is None
    ttl = new_record(JobSpec("b", schedule="@every 1m", ttl="90s"), T0)
    assert ttl.next_at is not None
    assert ttl.after_tick(ttl.next_at).next_at is None  # the 2nd tick is past the TTL


def test_missed_ticks_fire_once() -> None:
    record = new_record(JobSpec("a", schedule="@every 1m"), T0)
    assert record.next_at is not None
    back = record.next_at + timedelta(minutes=10, seconds=30)  # ten ticks missed
    after = record.after_tick(back)
    assert after.next_at == back + timedelta(minutes=1)
    assert after.count == 1


def test_failure_policies() -> None:
    record = new_record(JobSpec("a", due_time="0s"), T0)
    for attempt in range(1, 4):  # the default: every second, 3 retries
        record = record.after_failure(T0)
        assert (record.attempts, record.next_at) == (attempt, T0 + timedelta(seconds=1))
    assert record.after_failure(T0).next_at is None  # given up: the one-shot is done
    dropped = new_record(JobSpec("b", schedule="@every 1m", failure_policy=FailurePolicy(
        drop=True, interval=None, max_retries=None)), T0)
    assert dropped.next_at is not None
    after = dropped.after_failure(dropped.next_at)
    assert after.attempts == 0 and after.next_at == dropped.next_at + timedelta(minutes=1)
    forever = new_record(JobSpec("c", due_time="0s", failure_policy=FailurePolicy(
        interval=timedelta(seconds=5), max_retries=None)), T0)
    for _ in range(50):
        forever = forever.after_failure(T0)
    assert forever.next_at == T0 + timedelta(seconds=5)


def test_records_round_trip() -> None:
    from pylotto.capabilities.scheduler.job import JobRecord, Payload

    record = new_record(JobSpec("a", schedule="@every 1m", repeats=3, ttl="1h",
                                data=Payload("t", b"\x00\xff"),
                                failure_policy=FailurePolicy(max_retries=None)), T0)
    assert JobRecord.loads(record.dumps()) == record


def test_a_bad_name_says_which_call_refused_it() -> None:
    from pylotto.capabilities.scheduler.job import validate_name

    with pytest.raises(InvalidArgument) as caught:
        validate_name("a/b", "get")
    rendered = dapr_errors.render(caught.value, "grpc")
    assert rendered.message.startswith('failed to get job due to: job name is invalid "a/b"')
    assert rendered.grpc_code.name == "INVALID_ARGUMENT"


async def test_the_scheduler_names_a_missing_store() -> None:
    from pathlib import Path

    from pylotto.capabilities.base import ComponentSet, RuntimeContext
    from pylotto.capabilities.scheduler import SchedulerCapability
    from pylotto.capabilities.state import StateCapability
    from pylotto.config.model import AppConfig
    from pylotto.core.errors import NotConfigured

    context = RuntimeContext(AppConfig(app_id="a"), Path("/nonexistent"))
    state = StateCapability(ComponentSet("state store", {}), context)
    with pytest.raises(NotConfigured, match=r"scheduler\.state_store 'jobs'"):
        await SchedulerCapability(state, context, store_name="jobs").start()
    off = SchedulerCapability(state, context)  # no store at all: the Jobs API is off
    await off.start()
    with pytest.raises(NotConfigured, match="no state store for the scheduler"):
        await off.schedule(JobSpec("a", due_time="1s"), overwrite=False)
    rendered = dapr_errors.render(NotConfigured("no state store for the scheduler is "
                                                "configured", where="jobs.store"), "grpc")
    assert rendered.grpc_code.name == "FAILED_PRECONDITION"
