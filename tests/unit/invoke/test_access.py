"""Access control decisions (Dapr's accessControl semantics)."""

from __future__ import annotations

import pytest

from pylotto.core.errors import PermissionDenied
from pylotto.security.access import AccessControl

RULES = AccessControl.model_validate({
    "default_action": "deny",
    "policies": [{"app_id": "frontend", "default_action": "deny", "operations": [
        {"name": "/orders/**", "verbs": ["GET", "POST"], "action": "allow"},
        {"name": "/orders/admin/*", "action": "deny"},
        {"name": "/health", "action": "allow"},
    ]}, {"app_id": "ops", "default_action": "allow"}],
})


@pytest.mark.parametrize(("caller", "method", "verb", "action"), [
    ("frontend", "orders/1", "GET", "allow"),
    ("frontend", "/orders/1/lines/2", "POST", "allow"),  # ** spans segments
    ("frontend", "orders/1", "DELETE", "deny"),          # verb not listed
    ("frontend", "orders/admin/x", "GET", "deny"),       # the longer pattern wins
    ("frontend", "health?full=1", "PUT", "allow"),       # any verb; query ignored
    ("frontend", "billing", "GET", "deny"),              # the policy's default
    ("ops", "anything/at/all", "DELETE", "allow"),
    ("stranger", "health", "GET", "deny"),               # the global default
])
def test_decisions(caller: str, method: str, verb: str, action: str) -> None:
    assert RULES.decide(caller, method, verb) == action


def test_no_rules_allows_and_policies_without_default_deny_others() -> None:
    assert AccessControl().decide("anyone", "x", "GET") == "allow"
    only = AccessControl.model_validate({"policies": [{"app_id": "a", "default_action": "allow"}]})
    assert only.decide("a", "x", "GET") == "allow"
    assert only.decide("b", "x", "GET") == "deny"


def test_check_raises_permission_denied_naming_the_call() -> None:
    with pytest.raises(PermissionDenied, match="app 'frontend' may not call DELETE /orders/1"):
        RULES.check("frontend", "orders/1", "DELETE")
