"""Names of the workflow engine: the internal actor types, instance-id validation, and the
state keys of an instance (docs/design/workflows.md §4.1, §4.3).

- Types: ``dapr.internal.<namespace>.<appid>.workflow`` and ``….activity`` (daprd's
  ``pkg/runtime/wfengine/backends/actors``); an activity's actor id is
  ``<instanceId>::<taskId>``.
- An instance id is checked on create only, as daprd's ``validateInstanceID``: at most 64
  characters (bytes, as Go's ``len``), each a (Unicode) letter, a digit, ``-`` or ``_``.
- Keys (actor state keys of the workflow actor): ``metadata``, ``history-000000``…,
  ``inbox-000000``… (6 digits, daprd's format), ``outbox-000000``… (deliveries to other
  instances committed by a turn and not yet confirmed).
"""

from __future__ import annotations

from pylotto.core.errors import InvalidArgument

NAMESPACE = "default"
MAX_ID_LENGTH = 64

METADATA = "metadata"
INDEX_ID = "index"
"""The actor id, under :func:`index_type`, whose one key lists the instances."""


def workflow_type(app_id: str, namespace: str = NAMESPACE) -> str:
    return f"dapr.internal.{namespace}.{app_id}.workflow"


def activity_type(app_id: str, namespace: str = NAMESPACE) -> str:
    return f"dapr.internal.{namespace}.{app_id}.activity"


def index_type(app_id: str, namespace: str = NAMESPACE) -> str:
    """The pseudo actor type whose one key lists the instances (never hosted, never called)."""
    return f"dapr.internal.{namespace}.{app_id}.workflowindex"


def activity_id(instance_id: str, task_id: int) -> str:
    return f"{instance_id}::{task_id}"


def history_key(index: int) -> str:
    return f"history-{index:06d}"


def inbox_key(seq: int) -> str:
    return f"inbox-{seq:06d}"


def outbox_key(seq: int) -> str:
    return f"outbox-{seq:06d}"


def timer_reminder(timer_id: int) -> str:
    return f"timer-{timer_id}"


def validate_instance_id(instance_id: str) -> None:
    """daprd's create-time check (InvalidArgument at ``workflows.instance_id_*``)."""
    if not instance_id:
        raise InvalidArgument("no instance ID was provided",
                              where="workflows.instance_id_missing")
    if len(instance_id.encode()) > MAX_ID_LENGTH:
        raise InvalidArgument(
            f"workflow instance ID exceeds the max length of {MAX_ID_LENGTH} characters",
            where="workflows.instance_id_too_long", instance_id=instance_id)
    if not all(c.isalpha() or c.isdecimal() or c in "-_" for c in instance_id):
        raise InvalidArgument(
            f"workflow instance ID '{instance_id}' is invalid: only alphanumeric and "
            "underscore characters are allowed", where="workflows.instance_id_invalid",
            instance_id=instance_id)
