"""Access control for service invocation (Dapr's ``accessControl``): which caller app ids may
call which methods of this sidecar's app.

    access_control:
      default_action: deny            # for callers no policy names (default: allow)
      policies:
      - app_id: frontend              # the caller
        default_action: deny          # for this caller's methods no operation names
        operations:
        - {name: /orders/**, verbs: [GET, POST], action: allow}
        - {name: /admin/*, action: deny}

Operation names are paths with globs: ``*`` matches one path segment, ``**`` any number; the
most specific match wins (the longest pattern). Verbs default to every verb. With policies but
no ``default_action``, callers no policy names are denied, as Dapr does; with no
``access_control`` at all, every caller is allowed. The caller's app id is the one its sidecar
sends (no mTLS identity yet): this guards against mistakes, not against a hostile network.
"""

from __future__ import annotations

import re
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from pylotto.core.errors import PermissionDenied

Action = Literal["allow", "deny"]


class AccessCheck(Protocol):
    """What service invocation asks of an access list (this module's, or Dapr's in
    :mod:`pylotto.security.dapr_acl`)."""

    def check(self, caller: str, method: str, verb: str,
              certified: str | None = None) -> None:
        """PermissionDenied unless ``caller`` (the app id its sidecar claims; ``certified``
        the one its mTLS certificate names, None without one) may call ``verb method``."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Operation(_Model):
    name: str
    verbs: list[str] = Field(default_factory=lambda: ["*"], alias="httpVerb")
    action: Action


class Policy(_Model):
    app_id: str = Field(alias="appId")
    default_action: Action = Field("deny", alias="defaultAction")
    operations: list[Operation] = Field(default_factory=list)


class AccessControl(_Model):
    default_action: Action | None = Field(None, alias="defaultAction")
    policies: list[Policy] = Field(default_factory=list)

    def check(self, caller: str, method: str, verb: str,
              certified: str | None = None) -> None:
        """Raise PermissionDenied unless ``caller`` may call ``verb method`` (the claimed
        app id decides; with mTLS it is the certified one, checked before)."""
        verb = verb or "GET"
        if self.decide(caller, method, verb) == "deny":
            raise PermissionDenied(f"access control: app {caller!r} may not call "
                                   f"{verb} /{method.lstrip('/')}")

    def decide(self, caller: str, method: str, verb: str) -> Action:
        policy = next((p for p in self.policies if p.app_id == caller), None)
        if policy is None:
            if self.default_action is not None:
                return self.default_action
            return "deny" if self.policies else "allow"
        path = "/" + method.split("?", 1)[0].lstrip("/")
        best: tuple[int, Action] | None = None
        for operation in policy.operations:
            verbs = {v.upper() for v in operation.verbs}
            matches = ("*" in verbs or verb.upper() in verbs) and \
                _glob(operation.name).fullmatch(path)
            if matches and (best is None or len(operation.name) > best[0]):
                best = (len(operation.name), operation.action)
        return best[1] if best is not None else policy.default_action


def _glob(pattern: str) -> re.Pattern[str]:
    out = []
    for part in re.split(r"(\*\*|\*)", "/" + pattern.lstrip("/")):
        out.append(".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part))
    return re.compile("".join(out))
