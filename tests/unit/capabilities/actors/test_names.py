"""daprd's ValidateName / NormalizeMethod rules and the actor state key scheme."""

from __future__ import annotations

import pytest

from pylotto.capabilities.actors.api import ActorRef
from pylotto.capabilities.actors.names import (
    actor_ref,
    check_name,
    check_reserved,
    normalize_method,
    owner_key,
    state_key,
)
from pylotto.core.errors import InvalidArgument, PermissionDenied


@pytest.mark.parametrize("name", ["a", "my-actor", "ünïcode", "a.b", "...", "a b", "x:y"])
def test_valid_names(name: str) -> None:
    assert check_name(name) is None


@pytest.mark.parametrize(("name", "problem"), [
    ("a/b", 'name contains forbidden character: "a/b"'),
    ("a\\b", 'name contains forbidden character: "a\\\\b"'),
    ("a#b", 'name contains forbidden character: "a#b"'),
    ("a?b", 'name contains forbidden character: "a?b"'),
    ("a\x00b", 'name contains forbidden character: "a\\x00b"'),
    ("a\nb", 'name contains control character at position 1: "a\\nb"'),
    ("ab\x7f", 'name contains control character at position 2: "ab\\x7f"'),
    (".", 'name is a path traversal sequence: "."'),
    ("..", 'name is a path traversal sequence: ".."'),
])
def test_invalid_names(name: str, problem: str) -> None:
    assert check_name(name) == problem


def test_actor_ref_names_the_bad_part() -> None:
    with pytest.raises(InvalidArgument) as err:
        actor_ref("T", "a/b")
    assert err.value.where == "actors.name"
    assert err.value.fields["detail"] == (
        'invalid actorId: name contains forbidden character: "a/b"')
    with pytest.raises(InvalidArgument) as err:
        actor_ref("..", "1")
    assert err.value.fields["detail"].startswith("invalid actorType: ")
    assert actor_ref("T", "1") == ActorRef("T", "1")


@pytest.mark.parametrize(("method", "normal"), [
    ("method", "method"),
    ("a/b", "a/b"),
    ("a//b/", "a/b"),
    ("a/./b", "a/b"),
    ("a/../b", "b"),
    ("../x", "x"),
    ("../../x/y", "x/y"),
    ("..", ""),
    (".", ""),
    ("", ""),
    ("/a/../../b", "/b"),
    ("remind/x", "remind/x"),
])
def test_normalize_method(method: str, normal: str) -> None:
    assert normalize_method(method) == normal


@pytest.mark.parametrize("method", ["a?b", "a#b", "a\x00b", "a\x01b", "a\x7f"])
def test_normalize_method_refuses(method: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        normalize_method(method)
    assert err.value.where == "actors.name"


def test_reserved_types() -> None:
    check_reserved("dapr.internalish")
    with pytest.raises(PermissionDenied) as err:
        check_reserved("dapr.internal.default.app.workflow")
    assert err.value.where == "actors.reserved"
    assert "is reserved for the Dapr workflow runtime" in err.value.message


def test_key_scheme() -> None:
    actor = ActorRef("Cart", "42")
    assert state_key("shop", actor, "items") == "shop||Cart||42||items"
    assert owner_key("shop", actor) == "_actors.shop.owner.Cart||42"
