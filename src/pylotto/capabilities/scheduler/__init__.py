"""Durable timers: Dapr's Jobs API today (cron bindings, the delay queue and actor reminders
are to come on the same core). See docs/scheduler.md."""

from pylotto.capabilities.scheduler.job import FailurePolicy, JobSpec, Payload
from pylotto.capabilities.scheduler.service import SchedulerCapability

__all__ = ["FailurePolicy", "JobSpec", "Payload", "SchedulerCapability"]
