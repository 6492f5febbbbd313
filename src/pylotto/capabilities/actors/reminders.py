"""Actor reminders: durable, on the scheduler (docs/design/actors.md §4.1), as daprd 1.19 keeps
them on its Scheduler service (``pkg/actors/internal/scheduler``).

A second :class:`~pylotto.capabilities.scheduler.SchedulerCapability` runs over the actor
state store with its own key base, ``_scheduler.<appid>.actors.``, so the Jobs API's
``ListJobs`` and ``DeleteJobsByPrefix`` never see a reminder, and a reminder is never handed
to the app as a job. Each reminder is the job ``<type>||<id>||<name>``: go-etcd-cron's name
rule (each ``||`` part a DNS-1123 subdomain, ``_ : -`` and spaces ignored) applies to the
type, the id and the name, as daprd's scheduler applies it to its job keys. The scheduler's
claims and leases make every tick fire once across the sidecars of the app id, and its
records survive restarts; a tick missed while every sidecar was down fires once when one is
back.

- **Period** → ``@every <Go duration>`` plus ``repeats`` (``periods.schedule_from_period``);
  year, month and day parts are refused. ``dueTime`` and ``ttl`` are the scheduler's (RFC
  3339, Go or ISO 8601 durations). A period without a due time starts counting at the
  registration; neither is refused (as go-etcd-cron refuses such a job). A zero period
  (``0s``, the SDK's ``timedelta(0)``) is refused: daprd hands ``@every 0s`` on as it is.
- **Data**: the stored JSON bytes, kept as daprd keeps them (a ``BytesValue`` Any), handed
  back as they came in ticks, :meth:`get` and :meth:`list`.
- **Ticks** go through the :data:`~pylotto.capabilities.actors.api.TickSink` (the router,
  which finds the actor's sidecar; any sidecar may claim a tick). They carry the actor, the
  name and the data, with ``dueTime`` and ``period`` empty, as daprd 1.19's scheduler
  streamer sends them (``cluster/streamer.go`` ``invokeActorReminder``). A tick not delivered
  (moved, not yet leased, the app failed) fails the trigger: the reminder's failure policy
  retries it (the scheduler's default: every second, 3 times).
- **Cancel** (the app answers ``X-Daprremindercancel: true``): the reminder is deleted.
  *Departure*: daprd 1.19 only counts the tick a success and keeps the job (a TODO in its
  ``cluster/streamer.go``); a reminder that asked to end, ends here.
- :meth:`get` and :meth:`list` answer what daprd's scheduler answers: ``period`` is the
  schedule (``@every 10s``), not the text registered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from google.protobuf import wrappers_pb2

from pylotto.appchannel.jobs import JobChannel
from pylotto.capabilities.actors.api import (
    SEPARATOR,
    ActorRef,
    Reminder,
    Reminders,
    ReminderSpec,
    Tick,
    TickKind,
    TickSink,
)
from pylotto.capabilities.actors.periods import PeriodError, schedule_from_period
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.scheduler import JobSpec, Payload, SchedulerCapability
from pylotto.capabilities.scheduler.service import LEASE_SECONDS, POLL_SECONDS
from pylotto.capabilities.state import StateCapability
from pylotto.components.state.base import StateStore
from pylotto.config.model import AppConfig
from pylotto.core.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PylottoError,
)
from pylotto.observability.dapr_metrics import DaprMetrics

log = logging.getLogger("pylotto.actors.reminders")

BYTES_TYPE_URL = "type.googleapis.com/google.protobuf.BytesValue"
NOT_HOSTED = "operations on actor reminders are only possible on hosted actor types"
CANCEL_ATTEMPTS = 5


def key_base(app_id: str) -> str:
    """The prefix of the reminders' scheduler records of app ``app_id``."""
    return f"_scheduler.{app_id}.actors."


def job_name(actor: ActorRef, name: str) -> str:
    """``<type>||<id>||<name>``."""
    return f"{actor.key}{SEPARATOR}{name}"


def split_job_name(job: str) -> tuple[ActorRef, str]:
    """The actor and reminder name of job ``job`` (the type is the first part, the name the
    last; an id may hold ``||``)."""
    actor_type, _, rest = job.partition(SEPARATOR)
    actor_id, _, name = rest.rpartition(SEPARATOR)
    return ActorRef(actor_type, actor_id), name


def payload_of(data: bytes) -> Payload | None:
    """The scheduler payload of reminder data: a ``BytesValue`` Any, as daprd keeps it."""
    if not data:
        return None
    return Payload(BYTES_TYPE_URL, wrappers_pb2.BytesValue(value=data).SerializeToString())


def data_of(type_url: str, value: bytes) -> bytes:
    """The reminder data of a scheduler payload (its bytes, unwrapped)."""
    if type_url == BYTES_TYPE_URL:
        wrapped = wrappers_pb2.BytesValue()
        wrapped.ParseFromString(value)
        return wrapped.value
    return value


def _rewrapped(err: PylottoError, where: str) -> PylottoError:
    """``err`` (same kind, so same status) at one of the actor ``where``s, its message the
    ``detail`` daprd's text is formatted with (``error creating actor reminder: <detail>``)."""
    return type(err)(err.message, where=where, **{**err.fields, "detail": err.message})


class _TickChannel(JobChannel):
    """The reminders' scheduler hands its triggers here: on to the router as ticks."""

    description = "actor router"

    def __init__(self, owner: SchedulerReminders) -> None:
        self.owner = owner

    async def trigger(self, name: str, type_url: str, value: bytes) -> bool:
        sink = self.owner.sink
        if sink is None:
            return False
        actor, reminder = split_job_name(name)
        tick = Tick(actor, TickKind.REMINDER, reminder, data=data_of(type_url, value))
        fired = self.owner.metrics.actor_reminder_fired
        try:
            outcome = await sink(tick)
        except PylottoError as err:
            log.warning("reminder %s: %s", name, err.message)
            fired(actor.type, False)
            return False
        except Exception:  # the router failed in a way it should not: retried, not lost
            log.exception("reminder %s: the router failed", name)
            fired(actor.type, False)
            return False
        fired(actor.type, outcome.delivered or outcome.cancel)
        if outcome.cancel:
            await self.owner.cancelled(name)
            return True
        return outcome.delivered


class SchedulerReminders(Reminders):
    """Reminders of app ``app_id`` (default: the state capability's) in state store
    ``store_name`` of ``state``. ``hosted``: whether this sidecar's app hosts an actor type
    (None: not checked here; daprd refuses every reminder operation on other types; an
    attribute, so the runtime built after this may set it);
    ``poll`` / ``lease``: the scheduler's; ``metrics``: where the ticks are counted
    (daprd's ``dapr_runtime_actor_reminders_fired_total``)."""

    def __init__(self, state: StateCapability, store_name: str, *, app_id: str | None = None,
                 hosted: Callable[[str], bool] | None = None, poll: float = POLL_SECONDS,
                 lease: float = LEASE_SECONDS, metrics: DaprMetrics | None = None) -> None:
        self.hosted = hosted
        self.metrics = metrics if metrics is not None else DaprMetrics("")
        self.sink: TickSink | None = None
        self.app_id = app_id or state.context.app_id
        self.scheduler = SchedulerCapability(
            state, state.context, store_name=store_name, channel=_TickChannel(self),
            poll=poll, lease=lease, key_base=key_base(self.app_id))

    @classmethod
    def over_component(cls, component: StateStore, app_id: str, data_dir: Path, *,
                       name: str = "actorstore", hosted: Callable[[str], bool] | None = None,
                       poll: float = POLL_SECONDS,
                       lease: float = LEASE_SECONDS) -> SchedulerReminders:
        """Reminders straight over a state store component (its own state capability,
        without the runtime's resiliency and metrics)."""
        context = RuntimeContext(AppConfig.model_validate({"app_id": app_id}), data_dir)
        state = StateCapability(ComponentSet("state store", {name: component}), context)
        return cls(state, name, app_id=app_id, hosted=hosted, poll=poll, lease=lease)

    @property
    def delivered(self) -> int:
        """Ticks this sidecar delivered."""
        return self.scheduler.delivered

    async def start(self, sink: TickSink) -> None:
        self.sink = sink
        await self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        self.sink = None

    def _check_hosted(self, actor_type: str) -> None:
        if self.hosted is not None and not self.hosted(actor_type):
            raise PermissionDenied(NOT_HOSTED, where="actors.reminder_hosted",
                                   detail=NOT_HOSTED, actor_type=actor_type)

    # ---- the API -----------------------------------------------------------------------------

    async def register(self, actor: ActorRef, name: str, spec: ReminderSpec,
                       overwrite: bool) -> None:
        where = "actors.reminder_create"
        self._check_hosted(actor.type)
        try:
            schedule, repeats = schedule_from_period(spec.period)
        except PeriodError as err:
            raise InvalidArgument(str(err), where=where, detail=str(err), name=name) from None
        if schedule is None and not spec.due_time:  # go-etcd-cron's Builder.Parse
            text = "job must have either a due time or a schedule"
            raise InvalidArgument(text, where=where, detail=text, name=name)
        job = JobSpec(job_name(actor, name), schedule=schedule, repeats=repeats,
                      due_time=spec.due_time or None, ttl=spec.ttl or None,
                      data=payload_of(spec.data), failure_policy=spec.failure_policy)
        try:
            await self.scheduler.schedule(job, overwrite)
        except AlreadyExists:
            raise AlreadyExists(f"actor reminder already exists: {name}", where=where,
                                detail=name, name=name) from None
        except PylottoError as err:
            raise _rewrapped(err, where) from None

    async def unregister(self, actor: ActorRef, name: str) -> None:
        self._check_hosted(actor.type)
        try:
            await self.scheduler.delete(job_name(actor, name))
        except InvalidArgument:
            return  # no reminder can have that name
        except PylottoError as err:
            raise _rewrapped(err, "actors.reminder_delete") from None

    async def get(self, actor: ActorRef, name: str) -> Reminder:
        self._check_hosted(actor.type)
        try:
            found = await self.scheduler.store().read(job_name(actor, name))
        except PylottoError as err:
            raise _rewrapped(err, "actors.reminder_get") from None
        if found is None:
            raise NotFound(f"actor reminder not found: {name}", where="actors.reminder_get",
                           detail=name, name=name)
        return self._reminder(found.record.spec)

    async def list(self, actor_type: str, actor_id: str | None) -> list[Reminder]:
        self._check_hosted(actor_type)
        prefix = self._prefix(actor_type, actor_id)
        try:
            store = self.scheduler.store()
            listed = {n: g for n, g in (await store.index()).items() if n.startswith(prefix)}
            records = await store.read_many(sorted(listed))
        except PylottoError as err:
            raise _rewrapped(err, "actors.reminder_get") from None
        return [self._reminder(record.spec) for job, record in records.items()
                if record is not None and record.generation == listed[job]]

    async def unregister_all(self, actor_type: str, actor_id: str | None) -> None:
        self._check_hosted(actor_type)
        try:
            await self.scheduler.delete_prefix(self._prefix(actor_type, actor_id))
        except PylottoError as err:
            raise _rewrapped(err, "actors.reminder_delete") from None

    @staticmethod
    def _prefix(actor_type: str, actor_id: str | None) -> str:
        if actor_id is None:
            return actor_type + SEPARATOR
        return f"{actor_type}{SEPARATOR}{actor_id}{SEPARATOR}"

    @staticmethod
    def _reminder(spec: JobSpec) -> Reminder:
        actor, name = split_job_name(spec.name)
        data = spec.data
        return Reminder(actor, name, ReminderSpec(
            due_time=spec.due_time or "", period=spec.schedule or "", ttl=spec.ttl or "",
            data=data_of(data.type_url, data.value) if data else b"",
            failure_policy=spec.failure_policy))

    # ---- a tick answered "cancel" --------------------------------------------------------------

    async def cancelled(self, job: str) -> None:
        """Delete job ``job`` whose tick the app answered with cancel, if it is still the
        one this sidecar claimed (not overwritten meanwhile)."""
        store = self.scheduler.store()
        for _ in range(CANCEL_ATTEMPTS):  # the lease renewal may write it in between
            try:
                current = await store.read(job)
                if current is None or current.record.owner != self.scheduler.instance:
                    return
                if await store.remove(current):
                    await store.unlist(job, current.record.generation)
                    log.info("reminder %s: cancelled by the app: deleted", job)
                    return
            except PylottoError as err:
                log.warning("reminder %s: cannot delete it after a cancel: %s", job,
                            err.message)
                return
        log.warning("reminder %s: cancelled by the app, but it kept changing: not deleted",
                    job)
