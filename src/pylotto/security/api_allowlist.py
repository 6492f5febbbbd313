"""Dapr's API allow and deny lists (``spec.api`` of a Dapr Configuration): which of the
sidecar's APIs the app may call.

    api:
      allowed:
      - {name: state, version: v1, protocol: grpc}
      - {name: state, version: v1.0, protocol: http}
      denied:
      - {name: secrets, version: v1, protocol: http}

As in Dapr: a rule names an API group and version per protocol (``protocol`` exactly ``grpc``
or ``http``; rules of the other protocol do not touch it). A denied API is refused; with an
allow list, every API it does not name is refused. gRPC: the methods of Dapr's
``dapr.proto.runtime.v1.Dapr`` service by group (``state.v1``: GetState, SaveState, ...),
refused with UNIMPLEMENTED "Not Implemented"; other methods (gRPC proxying, health) are not
touched. HTTP: a route matches a rule by its group (``/v1.0-alpha1/lock/...`` is ``lock`` at
``v1alpha1``) or, Dapr's older form, when ``<version>/<name>`` starts its path
(``v1.0/state``); a refused route answers 404, and the health routes are always allowed.

**Departure:** pylotto serves more APIs than Dapr's on its gRPC ports (Layotto's
``spec.proto.runtime.v1.Runtime`` and ``pylotto.v1.StateQuery``, with the same state, pub/sub,
secrets...). With any gRPC rule they are refused entirely, since no rule can name them;
otherwise they would be a way around the lists.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DAPR_PREFIX = "/dapr.proto.runtime.v1.Dapr/"
OTHER_API_PREFIXES = ("/spec.proto.runtime.v1.", "/pylotto.v1.StateQuery/")
"""pylotto's API services that no Dapr rule can name (refused when gRPC rules are given)."""
ALWAYS_ALLOWED_HTTP = frozenset({"healthz"})

_GRPC_GROUPS: dict[str, tuple[str, ...]] = {
    "invoke.v1": ("InvokeService",),
    "state.v1": ("GetState", "GetBulkState", "SaveState", "DeleteState", "DeleteBulkState",
                 "ExecuteStateTransaction"),
    "state.v1alpha1": ("QueryStateAlpha1",),
    "publish.v1": ("PublishEvent", "BulkPublishEvent"),
    "publish.v1alpha1": ("BulkPublishEventAlpha1",),
    "bindings.v1": ("InvokeBinding",),
    "secrets.v1": ("GetSecret", "GetBulkSecret"),
    "actors.v1": ("RegisterActorTimer", "UnregisterActorTimer", "RegisterActorReminder",
                  "GetActorReminder", "UnregisterActorReminder",
                  "UnregisterActorRemindersByType", "ListActorReminders", "GetActorState",
                  "ExecuteActorStateTransaction", "InvokeActor"),
    "actors.v1alpha1": ("SubscribeActorEventsAlpha1",),
    "metadata.v1": ("GetMetadata", "SetMetadata"),
    "configuration.v1alpha1": ("GetConfigurationAlpha1", "SubscribeConfigurationAlpha1",
                               "UnsubscribeConfigurationAlpha1"),
    "configuration.v1": ("GetConfiguration", "SubscribeConfiguration",
                         "UnsubscribeConfiguration"),
    "lock.v1alpha1": ("TryLockAlpha1",),
    "unlock.v1alpha1": ("UnlockAlpha1",),
    "subtlecrypto.v1alpha1": ("SubtleGetKeyAlpha1", "SubtleEncryptAlpha1",
                              "SubtleDecryptAlpha1", "SubtleSignAlpha1", "SubtleVerifyAlpha1",
                              "SubtleWrapKeyAlpha1", "SubtleUnwrapKeyAlpha1"),
    "crypto.v1alpha1": ("EncryptAlpha1", "DecryptAlpha1"),
    "workflows.v1alpha1": tuple(f"{verb}WorkflowAlpha1" for verb in (
        "Start", "Get", "Terminate", "RaiseEvent", "Purge", "Pause", "Resume")),
    "workflows.v1beta1": tuple(f"{verb}WorkflowBeta1" for verb in (
        "Start", "Get", "Terminate", "RaiseEvent", "Purge", "Pause", "Resume")),
    "jobs.v1alpha1": ("ScheduleJobAlpha1", "DeleteJobAlpha1", "GetJobAlpha1",
                      "DeleteJobsByPrefixAlpha1", "ListJobsAlpha1"),
    "jobs.v1": ("ScheduleJob", "DeleteJob", "GetJob", "DeleteJobsByPrefix", "ListJobs"),
    "shutdown.v1": ("Shutdown",),
    "subscribe.v1alpha1": ("SubscribeTopicEventsAlpha1",),
    "conversation.v1alpha1": ("ConverseAlpha1",),
    "conversation.v1alpha2": ("ConverseAlpha2",),
}
"""Dapr's gRPC API groups (``<name>.<version>``) and the methods of each."""


class ApiRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str = ""
    protocol: str = ""


class ApiSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed: list[ApiRule] = Field(default_factory=list)
    denied: list[ApiRule] = Field(default_factory=list)

    def compiled(self) -> ApiAccess | None:
        """None when no rule is given (every API served)."""
        if not self.allowed and not self.denied:
            return None
        return ApiAccess(self)


def _grpc_methods(rules: list[ApiRule]) -> frozenset[str]:
    return frozenset(DAPR_PREFIX + method for rule in rules if rule.protocol == "grpc"
                     for method in _GRPC_GROUPS.get(f"{rule.name}.{rule.version}", ()))


def _http_keys(rules: list[ApiRule]) -> frozenset[str]:
    return frozenset(f"{rule.version}/{rule.name}" for rule in rules
                     if rule.protocol.lower() == "http")


class ApiAccess:
    def __init__(self, spec: ApiSpec) -> None:
        self.grpc_rules = any(r.protocol == "grpc" for r in (*spec.allowed, *spec.denied))
        self._grpc_allowed = _grpc_methods(spec.allowed)
        self._grpc_denied = _grpc_methods(spec.denied)
        self._http_allowed = _http_keys(spec.allowed)
        self._http_denied = _http_keys(spec.denied)

    def allows_grpc(self, method: str) -> bool:
        """Whether gRPC ``method`` (``/package.Service/Method``) may be called."""
        if method.startswith(OTHER_API_PREFIXES):
            return not self.grpc_rules
        if not method.startswith("/dapr.proto.runtime."):
            return True
        if method in self._grpc_denied:
            return False
        return not self._grpc_allowed or method in self._grpc_allowed

    def allows_http(self, path: str) -> bool:
        """Whether the Dapr HTTP API route at ``path`` (``/v1.0/state/...``) may be called."""
        parts = path.lstrip("/").split("/")
        if len(parts) < 2 or parts[1] in ALWAYS_ALLOWED_HTTP:
            return True
        if self._http_denied and _matches(parts, self._http_denied):
            return False
        return not self._http_allowed or _matches(parts, self._http_allowed)


def _matches(parts: list[str], keys: frozenset[str]) -> bool:
    """A route against rule keys ``<version>/<name>``: by its group (``v1.0-alpha1`` is
    version ``v1alpha1``), or when a key starts its path (Dapr's legacy form)."""
    group_version = parts[0].replace("v1.0", "v1").replace("-", "")
    if f"{group_version}/{parts[1]}" in keys:
        return True
    path = "/".join(parts)
    return any(path.startswith(key) for key in keys)
