"""Routing rules of a subscription: the first rule whose CEL ``match`` holds for an event picks
its path, else the default path. With rules, no match and no default path, the event is dropped
when the app channel says so (Dapr's HTTP apps), else it goes with an empty path (Dapr's gRPC
apps, whose SDK then picks the topic's plain handler).

Expressions see the CloudEvent as ``event`` (``event.type``, ``event.source``, ``event.data``
— decoded when it is JSON — and every extension). They are compiled once, when the
subscription is made: a malformed expression fails the subscription with InvalidArgument.
cel-python is imported only when some subscription has rules.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pylotto.appchannel import cloudevents
from pylotto.appchannel.base import RouteRule
from pylotto.core.errors import InvalidArgument
from pylotto.core.json_input import decode_json

log = logging.getLogger("pylotto.pubsub.routing")


class Router:
    def __init__(self, rules: Sequence[RouteRule], default_path: str, *,
                 drop_unmatched: bool = True) -> None:
        self.default_path = default_path
        self.drop_unmatched = drop_unmatched
        self._programs: list[tuple[Any, str, str]] = []
        if rules:
            import celpy

            env = celpy.Environment()
            for rule in rules:
                try:
                    program = env.program(env.compile(rule.match))
                except Exception as exc:  # celpy raises several error types
                    raise InvalidArgument(
                        f"routing rule {rule.match!r} is not a valid CEL expression: {exc}"
                    ) from None
                self._programs.append((program, rule.path, rule.match))
        self.has_rules = bool(self._programs)

    def route(self, envelope: Mapping[str, Any]) -> str | None:
        """The event's path; None means drop it (rules, no match, no default)."""
        if not self._programs:
            return self.default_path
        from celpy.adapter import json_to_cel

        activation = json_to_cel({"event": _event_view(envelope)})
        for program, path, match in self._programs:
            try:
                if bool(program.evaluate(activation)):
                    return path
            except Exception as exc:  # an expression that cannot be evaluated does not match
                log.debug("routing rule %r: %s", match, exc)
        if self.default_path or not self.drop_unmatched:
            return self.default_path
        return None


def _event_view(envelope: Mapping[str, Any]) -> dict[str, Any]:
    view = dict(envelope)
    data = view.get(cloudevents.DATA)
    if isinstance(data, str):
        with contextlib.suppress(InvalidArgument):
            view[cloudevents.DATA] = decode_json(data, "the event data")
    return view
