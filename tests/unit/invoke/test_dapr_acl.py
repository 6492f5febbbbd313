"""Dapr's access control rules (``spec.accessControl``), as dapr/dapr pkg/acl decides."""

from __future__ import annotations

from typing import Any

import pytest

from pylotto.core.errors import PermissionDenied
from pylotto.security.dapr_acl import AccessControlSpec, DaprAccessControl
from pylotto.security.secret_scopes import SecretScope, SecretScopes


def acl(spec: dict[str, Any], *, http: bool = True) -> DaprAccessControl:
    compiled = AccessControlSpec.model_validate(spec).compiled(http=http)
    assert compiled is not None
    return compiled


POLICY = {"appId": "frontend", "trustDomain": "public", "namespace": "default",
          "defaultAction": "deny", "operations": [
              {"name": "/op1", "httpVerb": ["POST", "GET"], "action": "allow"},
              {"name": "/op2/*", "httpVerb": ["*"], "action": "allow"},
              {"name": "/op3/**", "httpVerb": ["PUT"], "action": "allow"},
              {"name": "/v1.0-*/x", "httpVerb": ["GET"], "action": "allow"},
              {"name": "/OPS/Upper", "httpVerb": ["GET"], "action": "allow"}]}


@pytest.mark.parametrize(("method", "verb", "allowed"), [
    ("op1", "POST", True), ("/op1", "GET", True), ("op1", "PUT", False),
    ("op2/a", "DELETE", True), ("op2/a/b", "GET", False),
    ("op2", "GET", True),  # Dapr's trie: a trailing /* also matches the bare prefix
    ("op3/a/b/c", "PUT", True), ("op3/a", "GET", False),
    ("v1.0-beta/x", "GET", True), ("ops/upper", "GET", True), ("other", "GET", False),
])
def test_operations_of_an_http_app(method: str, verb: str, allowed: bool) -> None:
    rules = acl({"defaultAction": "allow", "policies": [POLICY]})
    assert (rules.decide("frontend", "/" + method.lstrip("/"), verb) == "allow") is allowed


def test_grpc_app_ignores_verbs_and_case() -> None:
    rules = acl({"defaultAction": "allow", "policies": [POLICY]}, http=False)
    assert rules.decide("frontend", "/op1", "NONE") == "allow"
    assert rules.decide("frontend", "/ops/upper", "NONE") == "deny"  # case kept for gRPC
    assert rules.decide("frontend", "/OPS/Upper", "NONE") == "allow"


def test_without_an_identity_the_global_default_applies() -> None:
    rules = acl({"defaultAction": "deny", "policies": [POLICY]})
    with pytest.raises(PermissionDenied) as info:  # no mTLS: the claimed app id is not used
        rules.check("frontend", "op1", "GET", None)
    assert info.value.message == ("access control policy has denied access to id:  "
                                  "operation: /op1 verb: GET")
    rules.check("frontend", "op1", "GET", "frontend")  # certified: the policy applies
    with pytest.raises(PermissionDenied, match="id: spiffe://public/ns/default/shop "):
        rules.check("shop", "op1", "GET", "shop")
    assert acl({"defaultAction": "allow", "policies": [POLICY]}).decide(None, "/x", "GET") == \
        "allow"


def test_defaults_as_dapr() -> None:
    assert AccessControlSpec().compiled(http=True) is None  # nothing said: no ACL
    assert acl({"trustDomain": "public"}).default_action == "deny"  # policies absent
    assert acl({"trustDomain": "public", "policies": []}).default_action == "allow"
    other_domain = {**POLICY, "trustDomain": "elsewhere"}
    rules = acl({"defaultAction": "allow", "policies": [other_domain]})
    assert rules.decide("frontend", "/other", "GET") == "allow"  # policy of another domain


def test_secret_scopes_as_dapr() -> None:
    scopes = SecretScopes([
        SecretScope.model_validate({"storeName": "a", "defaultAccess": "deny",
                                    "allowedSecrets": ["k1"], "deniedSecrets": ["k1"]}),
        SecretScope.model_validate({"storeName": "b", "deniedSecrets": ["k2"]}),
        SecretScope.model_validate({"storeName": "c", "defaultAccess": "deny"}),
    ])
    assert scopes.allows("a", "k1") and not scopes.allows("a", "k2")  # allowed list decides
    assert not scopes.allows("b", "k2") and scopes.allows("b", "k3")
    assert not scopes.allows("c", "anything") and scopes.allows("unscoped", "anything")
    with pytest.raises(PermissionDenied) as info:
        scopes.check("c", "db-password")
    assert info.value.message == 'access denied by policy to get "db-password" from "c"'
