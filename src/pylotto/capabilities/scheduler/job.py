"""A job as the Jobs API defines it, its validation (Dapr's order and texts) and its stored
record (the definition plus where its triggers are: next time, count, attempts, claim)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pylotto.core.errors import InvalidArgument
from pylotto.core.schedule import (
    Schedule,
    ScheduleError,
    parse_point_in_time,
)

DEFAULT_RETRY_INTERVAL = timedelta(seconds=1)
DEFAULT_MAX_RETRIES = 3
"""With no failure policy a job gets go-etcd-cron's: constant, every 1 s, 3 retries."""

APP_TARGET = ""
"""The target of the Jobs API's jobs: the app."""

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """What happens when the app fails a trigger: ``drop`` the tick, or retry it every
    ``interval`` (``constant``), ``max_retries`` times at most (None: without end)."""

    drop: bool = False
    interval: timedelta | None = DEFAULT_RETRY_INTERVAL
    max_retries: int | None = DEFAULT_MAX_RETRIES


@dataclass(frozen=True, slots=True)
class Payload:
    """``google.protobuf.Any``: its type URL and serialized bytes."""

    type_url: str = ""
    value: bytes = b""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a caller schedules (fields None: not set, as the proto's ``optional``)."""

    name: str
    schedule: str | None = None
    repeats: int | None = None
    due_time: str | None = None
    ttl: str | None = None
    data: Payload | None = None
    failure_policy: FailurePolicy | None = None
    target: str = APP_TARGET
    """Where its triggers go: :data:`APP_TARGET` (the Jobs API's jobs), or another kind of
    :class:`pylotto.appchannel.jobs.JobChannel` the scheduler was given (``"pubsub"``: the
    delay queue's messages)."""


MAX_DATA_BYTES = 4 * 1024 * 1024
"""The largest payload a job may carry (its serialized ``Any`` value): daprd hands a job to
its scheduler service over gRPC, whose default limit on a received message is 4 MiB (a larger
job fails there as RESOURCE_EXHAUSTED; here it is refused up front, naming the field). The
state store may hold less: etcd refuses a request over its ``--max-request-bytes`` (1.5 MiB
by default)."""


def _invalid(detail: str, field_name: str, name: str) -> InvalidArgument:
    return InvalidArgument(f"job failed validation: {detail}", where="jobs.schedule",
                           detail=detail, field=field_name, name=name)


def validate_name(name: str, op: str = "schedule") -> None:
    """go-etcd-cron's rule: after dropping ``_ : -`` and spaces, each ``||``-separated part
    of the lowercased name is a DNS-1123 subdomain (``op``: the call, for the message)."""
    sanitized = name
    for char in "_:- ":
        sanitized = sanitized.replace(char, "")
    for segment in sanitized.lower().split("||"):
        if len(segment) > 253 or not _DNS1123.match(segment):
            text = (f'job name is invalid "{sanitized}": a lowercase RFC 1123 subdomain must '
                    "consist of lower case alphanumeric characters, '-' or '.', and must "
                    "start and end with an alphanumeric character")
            raise InvalidArgument(text, where="jobs.name", detail=text, operation=op,
                                  field="job.name", name=name)


def check_request(spec: JobSpec | None, where: str = "jobs.schedule") -> JobSpec:
    """The API's own checks, in daprd's order (``pkg/api/universal/jobs.go``)."""
    if spec is None:
        raise InvalidArgument("Job is empty", where="jobs.empty", name="")
    if not spec.name:
        raise InvalidArgument("Name is empty", where="jobs.name_empty", name="")
    if spec.schedule is None and spec.due_time is None:
        raise InvalidArgument("Schedule is empty", where="jobs.schedule_empty", name=spec.name)
    return spec


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A stored job: the definition, when it began, when it ends, and its trigger state."""

    spec: JobSpec
    generation: str
    """New on every schedule call: a record of another generation is another job."""
    begin: datetime
    due: bool
    """``begin`` is the due time (the first trigger); False: the creation time."""
    expiration: datetime | None
    next_at: datetime | None
    """The next trigger; None: the job is done."""
    count: int = 0
    attempts: int = 0
    """Failed deliveries of the tick at ``next_at``."""
    owner: str = ""
    lease_until: float = 0.0
    """A sidecar delivering the tick at ``next_at`` holds it until then (Unix time)."""

    @property
    def policy(self) -> FailurePolicy:
        return self.spec.failure_policy or FailurePolicy()

    def schedule(self) -> Schedule | None:
        return None if self.spec.schedule is None else Schedule.parse(self.spec.schedule)

    def after_tick(self, now: datetime) -> JobRecord:
        """The record once the tick at ``next_at`` is done (delivered, or given up): the
        next trigger after it, but never one already past — a sidecar that was down fires
        a missed trigger once, not once per missed tick."""
        assert self.next_at is not None
        count = self.count + 1
        schedule = self.schedule()
        following: datetime | None = None
        if schedule is not None and (self.spec.repeats is None or count < self.spec.repeats):
            following = schedule.next_after(self.next_at)
            if following <= now:
                following = schedule.next_after(now)
            if self.expiration is not None and following > self.expiration:
                following = None
        return replace(self, count=count, attempts=0, next_at=following, owner="",
                       lease_until=0.0)

    def after_failure(self, now: datetime) -> JobRecord:
        """The record after a failed delivery: retried per the failure policy, else the
        tick is given up."""
        policy = self.policy
        attempts = self.attempts + 1
        if policy.drop or (policy.max_retries is not None and attempts > policy.max_retries):
            return self.after_tick(now)
        interval = policy.interval or DEFAULT_RETRY_INTERVAL
        return replace(self, attempts=attempts, next_at=now + interval, owner="",
                       lease_until=0.0)

    # ---- stored form -------------------------------------------------------------------------

    def dumps(self) -> bytes:
        spec = self.spec
        policy = spec.failure_policy
        body: dict[str, Any] = {
            "name": spec.name, "schedule": spec.schedule, "repeats": spec.repeats,
            "dueTime": spec.due_time, "ttl": spec.ttl,
            "data": None if spec.data is None else {
                "typeUrl": spec.data.type_url,
                "value": base64.b64encode(spec.data.value).decode()},
            "failurePolicy": None if policy is None else {
                "drop": policy.drop,
                "interval": None if policy.interval is None else policy.interval.total_seconds(),
                "maxRetries": policy.max_retries},
            **({"target": spec.target} if spec.target != APP_TARGET else {}),
            "generation": self.generation, "begin": self.begin.isoformat(), "due": self.due,
            "expiration": None if self.expiration is None else self.expiration.isoformat(),
            "next": None if self.next_at is None else self.next_at.isoformat(),
            "count": self.count, "attempts": self.attempts, "owner": self.owner,
            "leaseUntil": self.lease_until,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> JobRecord:
        body = json.loads(raw)
        data = body.get("data")
        policy = body.get("failurePolicy")
        spec = JobSpec(
            name=body["name"], schedule=body.get("schedule"), repeats=body.get("repeats"),
            due_time=body.get("dueTime"), ttl=body.get("ttl"),
            data=None if data is None else Payload(data["typeUrl"],
                                                   base64.b64decode(data["value"])),
            failure_policy=None if policy is None else FailurePolicy(
                drop=policy["drop"],
                interval=None if policy["interval"] is None
                else timedelta(seconds=policy["interval"]),
                max_retries=policy["maxRetries"]),
            target=body.get("target", APP_TARGET),
        )
        return cls(spec, body["generation"], datetime.fromisoformat(body["begin"]), body["due"],
                   _time(body.get("expiration")), _time(body.get("next")), body["count"],
                   body["attempts"], body["owner"], body["leaseUntil"])


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def new_record(spec: JobSpec, now: datetime | None = None, *,
               check_name: bool = True) -> JobRecord:
    """The record of a job scheduled now, after go-etcd-cron's checks (``Builder.Parse``,
    its order and texts): InvalidArgument naming the field otherwise. ``check_name`` False:
    a name the sidecar made itself, outside the Jobs API's (see ``SchedulerCapability.
    schedule_internal``)."""
    if check_name:
        validate_name(spec.name)
    name = spec.name
    if spec.data is not None and len(spec.data.value) > MAX_DATA_BYTES:
        raise _invalid(f"data is {len(spec.data.value)} bytes, over the limit of "
                       f"{MAX_DATA_BYTES} bytes", "job.data", name)
    if spec.schedule is None and (spec.repeats or 0) > 1:
        raise _invalid("job must have a schedule to repeat", "job.repeats", name)
    if spec.repeats is not None and spec.repeats < 1:
        raise _invalid("defined repeats must be greater than 0", "job.repeats", name)
    if spec.schedule is None and spec.ttl is not None:
        raise _invalid("job must have a schedule to have a ttl", "job.ttl", name)
    schedule = None
    if spec.schedule is not None:
        try:
            schedule = Schedule.parse(spec.schedule)
        except ScheduleError as err:
            raise _invalid(str(err), "job.schedule", name) from None
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    begin = now
    if spec.due_time is not None:
        try:
            begin = parse_point_in_time(spec.due_time, now)
        except ScheduleError as err:
            raise _invalid(str(err), "job.due_time", name) from None
    expiration = None
    if spec.ttl is not None:
        try:
            expiration = parse_point_in_time(spec.ttl, begin)
        except ScheduleError:
            raise _invalid("ttl format not recognized", "job.ttl", name) from None
        if spec.due_time is not None and begin > expiration:
            raise _invalid("ttl must be greater than due time", "job.ttl", name)
    due = spec.due_time is not None or schedule is None
    first = begin if due or schedule is None else schedule.next_after(begin)
    if expiration is not None and first > expiration:
        next_at: datetime | None = None
    else:
        next_at = first
    return JobRecord(spec, uuid.uuid4().hex, begin, spec.due_time is not None, expiration,
                     next_at)


@dataclass(frozen=True, slots=True)
class Trigger:
    """One trigger handed to the app: the job's name and payload."""

    name: str
    data: Payload = field(default_factory=Payload)
