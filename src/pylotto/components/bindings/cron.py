"""``cron``: an input binding that fires on a schedule (Dapr ``bindings.cron``).

Metadata ``schedule``: a cron expression of 5 fields or 6 (seconds first), optionally after
``TZ=<zone> `` / ``CRON_TZ=<zone> ``, or ``@every <Go duration>``, ``@yearly``, ``@monthly``,
``@weekly``, ``@daily`` / ``@midnight``, ``@hourly`` — parsed by the scheduler's
:class:`~pylotto.core.schedule.Schedule`. An expression without a zone is
read in the sidecar's local time zone, as Go's ``time.Local`` (``TZ``, else
``/etc/localtime``, else UTC).

Each sidecar fires on its own (as daprd's cron binding: it is not the Jobs scheduler). Each
trigger is an event with no data and metadata ``timeZone`` (the name Go gives the local zone:
``Local``, the ``TZ`` value, or ``UTC``) and ``readTimeUTC`` (the firing time as Go prints a
UTC time). A trigger runs on its own, so a slow app does not hold the next one back; triggers
missed while the sidecar was busy or asleep collapse into one. The app's answer is only
logged (by the bindings capability).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from pylotto.components.base import ComponentContext
from pylotto.components.bindings.base import BindingSettings, InputBinding, InputEvent, InputHandler
from pylotto.core.errors import ConfigError, PylottoError
from pylotto.core.metadata import ComponentSettings

# The scheduler's parser of Dapr's time forms, reused rather than copied. It lives with the
# Jobs API in the capability layer; moving it to core/ would make this import go down the
# layers as the rest do.
from pylotto.core.schedule import Schedule, ScheduleError

LOCALTIME = Path("/etc/localtime")


def local_zone() -> tuple[str, tzinfo]:
    """The local time zone and the name Go's ``time.Local.String()`` gives it."""
    name = os.environ.get("TZ")
    if name is None:
        try:
            with LOCALTIME.open("rb") as handle:
                return "Local", ZoneInfo.from_file(handle, key="localtime")
        except (OSError, ValueError):
            return "UTC", UTC
    name = name.removeprefix(":")
    if not name or name == "UTC":
        return "UTC", UTC
    try:
        return name, ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC", UTC


def go_utc_string(moment: datetime) -> str:
    """``moment`` as Go's ``time.Time.String()`` prints a UTC time
    (``2026-12-02 06:30:00.123456 +0000 UTC``; no fraction when it is zero)."""
    moment = moment.astimezone(UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (f".{fraction}" if fraction else "") + \
        " +0000 UTC"


def parse_schedule(text: str, zone: tzinfo) -> Schedule:
    """``text`` as the cron binding reads it; ValueError with components-contrib's text."""
    if not text:
        raise ValueError("schedule not set")
    try:
        return Schedule.parse(text, seconds_optional=True, zone=zone)
    except ScheduleError as err:
        raise ValueError(f"invalid schedule format '{text}': {err}") from None


class CronSettings(BindingSettings):
    schedule: str = Field("", alias="schedule", validate_default=True)

    @field_validator("schedule")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_schedule(value, UTC)
        return value


class CronBinding(InputBinding):
    Settings = CronSettings
    per_process = True
    """Every worker process of ``--workers`` would fire it: refused there, rather than the
    app getting each trigger once per worker."""

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, CronSettings):
            raise TypeError(f"{type(self).__name__} needs CronSettings")
        self.zone_name, zone = local_zone()
        try:
            self.schedule = parse_schedule(settings.schedule, zone)
        except ValueError as err:
            raise ConfigError(f"binding {name}: {err}") from None

    async def read(self, handler: InputHandler) -> None:
        log = self.context.logger
        running: set[asyncio.Task[None]] = set()
        planned = self.schedule.next_after(datetime.now(UTC))
        log.debug("binding %s: next run at %s", self.name, planned.isoformat())
        try:
            while True:
                now = datetime.now(UTC)
                if now < planned:  # a wake-up before the time (or a clock set back): again
                    await asyncio.sleep((planned - now).total_seconds())
                    continue
                task = asyncio.create_task(self._fire(handler, now))
                running.add(task)
                task.add_done_callback(running.discard)
                following = self.schedule.next_after(planned)
                planned = following if following > now else self.schedule.next_after(now)
        finally:
            for task in running:
                task.cancel()

    async def _fire(self, handler: InputHandler, now: datetime) -> None:
        self.context.logger.debug("binding %s: schedule fired at %s", self.name, now.isoformat())
        with contextlib.suppress(PylottoError):  # not retried; the capability logged it
            await handler(InputEvent(metadata={"timeZone": self.zone_name,
                                               "readTimeUTC": go_utc_string(now)}))
