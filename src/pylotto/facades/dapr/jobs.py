"""The Jobs API over gRPC: Schedule, Get, Delete, DeleteJobsByPrefix and List, each as its
stable RPC and its Alpha1 alias, and the proto ``Job`` ⇄ :class:`JobSpec` translation (the
HTTP routes use it too)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import jobs_pb2
from google.protobuf import duration_pb2

from pylotto.capabilities.scheduler import FailurePolicy, JobSpec, Payload
from pylotto.core.errors import InvalidArgument
from pylotto.facades.common.base import RuntimeRpcs


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def policy_from_proto(policy: common_pb2.JobFailurePolicy) -> FailurePolicy | None:
    kind = policy.WhichOneof("policy")
    if kind == "drop":
        return FailurePolicy(drop=True, interval=None, max_retries=None)
    if kind == "constant":
        constant = policy.constant
        try:
            interval = (constant.interval.ToTimedelta() if constant.HasField("interval")
                        else None)
        except OverflowError:  # a Duration beyond timedelta's range (fuzzed input)
            raise InvalidArgument("failure policy interval out of range") from None
        return FailurePolicy(
            interval=interval,
            max_retries=constant.max_retries if constant.HasField("max_retries") else None)
    return None


def policy_to_proto(policy: FailurePolicy) -> common_pb2.JobFailurePolicy:
    if policy.drop:
        return common_pb2.JobFailurePolicy(drop=common_pb2.JobFailurePolicyDrop())
    constant = common_pb2.JobFailurePolicyConstant()
    if policy.interval is not None:
        constant.interval.CopyFrom(_duration(policy.interval))
    if policy.max_retries is not None:
        constant.max_retries = policy.max_retries
    return common_pb2.JobFailurePolicy(constant=constant)


def _duration(delta: timedelta) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(delta)
    return out


def spec_from_proto(job: jobs_pb2.Job) -> JobSpec:
    return JobSpec(
        name=job.name, schedule=_optional(job, "schedule"), repeats=_optional(job, "repeats"),
        due_time=_optional(job, "due_time"), ttl=_optional(job, "ttl"),
        data=Payload(job.data.type_url, job.data.value) if job.HasField("data") else None,
        failure_policy=policy_from_proto(job.failure_policy)
        if job.HasField("failure_policy") else None)


def spec_to_proto(spec: JobSpec) -> jobs_pb2.Job:
    job = jobs_pb2.Job(name=spec.name)
    for name in ("schedule", "repeats", "due_time", "ttl"):
        value = getattr(spec, name)
        if value is not None:
            setattr(job, name, value)
    if spec.data is not None:
        job.data.type_url, job.data.value = spec.data.type_url, spec.data.value
    job.failure_policy.CopyFrom(policy_to_proto(spec.failure_policy or FailurePolicy()))
    return job


class DaprJobsRpcs(RuntimeRpcs):
    async def ScheduleJob(self, request: Any, context: Any) -> Any:
        spec = spec_from_proto(request.job) if request.HasField("job") else None
        await self.services.scheduler.schedule(spec, request.overwrite)
        return jobs_pb2.ScheduleJobResponse()

    ScheduleJobAlpha1 = ScheduleJob

    async def GetJob(self, request: Any, context: Any) -> Any:
        spec = await self.services.scheduler.get(request.name)
        return jobs_pb2.GetJobResponse(job=spec_to_proto(spec))

    GetJobAlpha1 = GetJob

    async def DeleteJob(self, request: Any, context: Any) -> Any:
        await self.services.scheduler.delete(request.name)
        return jobs_pb2.DeleteJobResponse()

    DeleteJobAlpha1 = DeleteJob

    async def DeleteJobsByPrefix(self, request: Any, context: Any) -> Any:
        await self.services.scheduler.delete_prefix(request.name_prefix)
        return jobs_pb2.DeleteJobsByPrefixResponse()

    async def DeleteJobsByPrefixAlpha1(self, request: Any, context: Any) -> Any:
        await self.services.scheduler.delete_prefix(request.name_prefix)
        return jobs_pb2.DeleteJobsByPrefixResponseAlpha1()

    async def ListJobs(self, request: Any, context: Any) -> Any:
        jobs = await self.services.scheduler.list()
        return jobs_pb2.ListJobsResponse(jobs=[spec_to_proto(j) for j in jobs])

    async def ListJobsAlpha1(self, request: Any, context: Any) -> Any:
        jobs = await self.services.scheduler.list()
        return jobs_pb2.ListJobsResponseAlpha1(jobs=[spec_to_proto(j) for j in jobs])
