"""Dapr's access control (``spec.accessControl`` of a Dapr Configuration), with Dapr's rules:
which callers may invoke which operations of this sidecar's app.

    accessControl:
      defaultAction: deny          # for callers no policy matches ("" with policies: deny)
      trustDomain: public
      policies:
      - appId: frontend
        defaultAction: allow       # for this caller's operations no rule matches
        trustDomain: public        # required, as in Dapr
        namespace: default         # required, as in Dapr
        operations:
        - {name: /orders/*, httpVerb: [GET, POST], action: allow}
        - {name: /admin/**, httpVerb: ["*"], action: deny}

**The caller's identity is its mTLS certificate, as in Dapr** (where it is the SPIFFE id
Sentry issued). Without mTLS (``mtls`` not configured) no caller has an identity, so — as in
Dapr without mTLS — every call gets the global ``defaultAction`` and the per-app policies never
apply: an app id a calling sidecar merely claims is not trusted. With pylotto's mTLS the
certificate names the app id (``spiffe://pylotto/app/<id>``); pylotto treats that identity as
trust domain ``public`` and namespace ``default``, Dapr's self-hosted defaults, so policies
written for a self-hosted Dapr match.

Operations match as Dapr's trie does: segment by segment, ``/*`` one segment at the end,
``/**`` any rest, ``*`` inside a segment any characters; the first rule written wins among
equal prefixes. For an HTTP app names are compared in lower case and the action of the call's
verb applies (``*`` any verb, else the policy's ``defaultAction``); for a gRPC app the rule's
action applies whatever the verb. A refused call is PermissionDenied "access control policy
has denied access to id: <spiffe id> operation: <op> verb: <verb>".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from pylotto.core.errors import ConfigError, PermissionDenied

SELF_HOSTED_TRUST_DOMAIN = "public"
SELF_HOSTED_NAMESPACE = "default"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AppOperation(_Model):
    name: str
    http_verb: list[str] = Field(default_factory=list, alias="httpVerb")
    action: str = ""


class AppPolicy(_Model):
    app_id: str = Field("", alias="appId")
    default_action: str = Field("", alias="defaultAction")
    trust_domain: str = Field("", alias="trustDomain")
    namespace: str = ""
    operations: list[AppOperation] = Field(default_factory=list)


class AccessControlSpec(_Model):
    default_action: str = Field("", alias="defaultAction")
    trust_domain: str = Field("", alias="trustDomain")
    policies: list[AppPolicy] | None = None

    def compiled(self, *, http: bool) -> DaprAccessControl | None:
        """The access list for an app served over HTTP (``http``) or gRPC; None when the
        spec says nothing (no access control, as Dapr). ConfigError as Dapr's validation."""
        if not self.trust_domain and not self.default_action and not self.policies:
            return None
        default = self.default_action.lower()
        if not default:
            default = "deny" if self.policies is None or self.policies else "allow"
        missing_domain = [p.app_id for p in self.policies or () if not p.trust_domain]
        missing_namespace = [p.app_id for p in self.policies or () if not p.namespace]
        missing_app = any(not p.app_id for p in self.policies or ())
        if missing_domain or missing_namespace or missing_app:
            raise ConfigError(
                "invalid access control spec. missing trustdomain for apps: "
                f"[{' '.join(missing_domain)}], missing namespace for apps: "
                f"[{' '.join(missing_namespace)}], missing app name on at least one of the "
                f"app policies: {str(missing_app).lower()}")
        policies = {}
        for policy in self.policies or ():
            trie = _Trie()
            for operation in policy.operations:
                name = operation.name if operation.name.startswith("/") else "/" + operation.name
                trie.put(name.lower() if http else name, operation)
            policies[(policy.app_id, policy.namespace)] = (policy, trie)
        return DaprAccessControl(default, self.trust_domain or SELF_HOSTED_TRUST_DOMAIN,
                                 policies, http)


@dataclass
class DaprAccessControl:
    default_action: str
    trust_domain: str
    policies: dict[tuple[str, str], tuple[AppPolicy, _Trie]]
    http: bool

    def check(self, caller: str, method: str, verb: str, certified: str | None = None) -> None:
        """Raise PermissionDenied unless the caller with mTLS identity ``certified`` (None:
        no identity) may call ``verb`` ``method``. ``caller`` (the claimed app id) is not
        used: a claim is not an identity."""
        operation = method if method.startswith("/") else "/" + method
        verb = (verb or "NONE").upper() if self.http else "NONE"
        if self.decide(certified, operation, verb) != "allow":
            spiffe = (f"spiffe://{SELF_HOSTED_TRUST_DOMAIN}/ns/{SELF_HOSTED_NAMESPACE}/"
                      f"{certified}") if certified is not None else ""
            raise PermissionDenied(f"access control policy has denied access to id: {spiffe} "
                                   f"operation: {operation} verb: {verb}")

    def decide(self, certified: str | None, operation: str, verb: str) -> str:
        action = self.default_action
        if certified is None:
            return action
        found = self.policies.get((certified, SELF_HOSTED_NAMESPACE))
        if found is None:
            return action
        policy, trie = found
        if policy.trust_domain != SELF_HOSTED_TRUST_DOMAIN:
            return action
        if policy.default_action:
            action = policy.default_action
        rule = trie.search(operation.lower() if self.http else operation)
        if rule is None:
            return action.lower()
        if not self.http:
            return rule.action.lower()
        if verb == "NONE":
            return policy.default_action.lower()
        by_verb = {v: rule.action for v in rule.http_verb}
        return (by_verb.get(verb) or by_verb.get("*") or action).lower()


@dataclass
class _Node:
    segment: str
    rule: AppOperation | None = None
    children: list[_Node] = field(default_factory=list)

    def child(self, segment: str, at_end: bool) -> _Node | None:
        """The first child matching ``segment``: itself, ``/*`` at the end, ``/**``, or a
        pattern with ``*`` in it."""
        for node in self.children:
            if node.segment == segment:
                return node
            if node.segment == "/*":
                if at_end:
                    return node
                continue
            if node.segment == "/**" or _segment_glob(node.segment).fullmatch(segment):
                return node
        return None


class _Trie:
    def __init__(self) -> None:
        self.root = _Node("/")

    def put(self, operation: str, rule: AppOperation) -> None:
        parts = operation.split("/")[1:]
        node = self.root
        for index, part in enumerate(parts):
            segment = "/" + part
            last = index == len(parts) - 1
            existing = next((n for n in node.children if n.segment == segment), None)
            if existing is None:
                existing = _Node(segment, rule if last else None)
                node.children.append(existing)
            elif last and existing.rule is None:
                existing.rule = rule
            node = existing

    def search(self, operation: str) -> AppOperation | None:
        parts = operation.split("/")[1:]
        node: _Node | None = self.root
        for index, part in enumerate(parts):
            at_end = index == len(parts) - 1
            assert node is not None
            node = node.child("/" + part, at_end)
            if node is None:
                return None
            if node.rule is not None:
                if not at_end and node.segment.endswith("/*") and \
                        not node.segment.endswith("/**"):
                    continue
                return node.rule
            if at_end:
                star = node.child("/*", True)
                return star.rule if star is not None else None
        return None


def _segment_glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")))
